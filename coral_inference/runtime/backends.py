"""The backend adapter contract: what a chip plugin registers through ``register_backend``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from coral_inference.models.package import ModelPackage
    from coral_inference.models.runner import InferenceSession


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and why (or why not)."""

    available: bool
    reason: str


@runtime_checkable
class BackendAdapter(Protocol):
    """A chip backend. Shared pre/post-processing lives in :mod:`coral_inference.models`;
    an adapter only turns a model package's weights into an :class:`InferenceSession`.

    An adapter may also have ``diagnostics() -> dict[str, str]``, its chip's own report (what
    ``coral doctor`` shows), and ``auto_rank() -> BackendRank``, where it stands under
    ``backends.preferred: auto`` (see :func:`rank_backends`); both are optional, not part of this
    protocol, so callers look them up with ``getattr``.
    """

    #: Short unique name used in config (``backends.preferred``) and ``--backend``.
    name: str
    #: Weight formats this backend loads, matching manifest ``weights`` keys (``"onnx"``).
    formats: tuple[str, ...]

    def availability(self) -> Availability:
        """Cheap probe (no model load): is the runtime importable, is the device there?"""

    def create_session(self, package: ModelPackage, options: Mapping[str, Any]) -> InferenceSession:
        """Load the package's weights (``package.weights_path(fmt)`` for one of
        :attr:`formats`; its ``manifest`` says how the model is fed) and return a ready
        session. ``options`` is the ``backends.options.<name>`` mapping, checked against the
        section the plugin declared (``declare_options``) when the configuration was loaded."""


#: The backend distributions that exist, by backend name: the only install advice given.
#: They are not on PyPI yet: they install from a checkout of coral-inference.
BACKEND_DISTRIBUTIONS = {
    "onnx": "coral_inference_onnx",
    "openvino": "coral_inference_openvino",
    "rknn": "coral_inference_rknn",
}

#: ``backends.preferred: [auto]``: rank the installed, available backends instead of a list.
AUTO = "auto"
#: :attr:`BackendRank.score` tiers: a backend on an accelerator (NPU, GPU) ...
RANK_ACCELERATOR = 300
#: ... a runtime tuned for this CPU (OpenVINO) ...
RANK_TUNED_CPU = 200
#: ... a portable CPU runtime (onnxruntime's CPU provider) ...
RANK_CPU = 100
#: ... and a backend that says nothing about itself (no ``auto_rank``), last.
RANK_UNKNOWN = 0


@dataclass(frozen=True)
class BackendRank:
    """Where an available backend stands under ``backends.preferred: auto`` (higher first),
    and what it would run on (``"OpenVINO on CPU (Intel Core i7)"``)."""

    score: int
    reason: str


@dataclass(frozen=True)
class BackendChoice:
    """Which backend :func:`choose_backend` picked and why (``coral init``/``coral doctor``).

    ``ranking`` lists, best first, every backend considered under ``auto`` as
    ``{"name", "score", "reason"}`` (empty for an explicit list or ``--backend``).
    """

    chosen: str | None
    reason: str
    ranking: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "reason": self.reason, "ranking": list(self.ranking)}


def exception_summary(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type's name when it has none: runtimes
    (onnxruntime, OpenVINO) raise multi-line C++ traces whose first line says what failed."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def rank_backends(backends: Mapping[str, BackendAdapter]) -> list[tuple[str, BackendRank]]:
    """Every available backend with its :class:`BackendRank`, best first (ties by name).

    A backend without ``auto_rank`` ranks :data:`RANK_UNKNOWN`; one whose ``auto_rank`` raises
    ranks :data:`RANK_UNKNOWN` too, with the error as its reason, rather than failing the run.
    """
    ranked = []
    for name, adapter in backends.items():
        if not adapter.availability().available:
            continue
        probe = getattr(adapter, "auto_rank", None)
        if not callable(probe):
            rank = BackendRank(RANK_UNKNOWN, "says nothing about its hardware (no auto_rank)")
        else:
            try:
                rank = probe()
            except Exception as exc:  # noqa: BLE001 - a broken probe demotes, never aborts
                rank = BackendRank(RANK_UNKNOWN, f"auto_rank() failed: {exception_summary(exc)}")
        ranked.append((name, rank))
    return sorted(ranked, key=lambda item: (-item[1].score, item[0]))


def install_command(backend: str) -> str:
    """How to install the distribution of ``backend`` (one of :data:`BACKEND_DISTRIBUTIONS`)."""
    return f"pip install ./{BACKEND_DISTRIBUTIONS[backend]} (from a coral-inference checkout)"


class BackendError(RuntimeError):
    """A backend cannot be selected or cannot load a model; the message says what to do."""


def select_backend(
    backends: Mapping[str, BackendAdapter],
    preferred: list[str],
    *,
    weight_formats: tuple[str, ...] | None = None,
    requested: str | None = None,
) -> BackendAdapter:
    """Pick the backend to run a model on (:func:`choose_backend` without the reason)."""
    return choose_backend(backends, preferred, weight_formats=weight_formats, requested=requested)[
        0
    ]


def choose_backend(
    backends: Mapping[str, BackendAdapter],
    preferred: list[str],
    *,
    weight_formats: tuple[str, ...] | None = None,
    requested: str | None = None,
) -> tuple[BackendAdapter, BackendChoice]:
    """Pick the backend to run a model on, and say why.

    ``requested`` (``--backend``) must exist and be available. Otherwise, with ``preferred``
    ``[auto]``, the best-ranked available backend (:func:`rank_backends`); else the first
    available backend in ``preferred`` order, then any other available one. Only backends that
    load one of the package's ``weight_formats`` count.
    """

    def loads(adapter: BackendAdapter) -> bool:
        return weight_formats is None or bool(set(adapter.formats) & set(weight_formats))

    if requested is not None:
        return _requested(backends, requested, weight_formats, loads), BackendChoice(
            requested, f"asked for by name (--backend {requested})"
        )
    if list(preferred) == [AUTO]:
        ranking = rank_backends(backends)
        table = tuple({"name": n, "score": r.score, "reason": r.reason} for n, r in ranking)
        usable = [(n, r) for n, r in ranking if loads(backends[n])]
        if usable:
            name, rank = usable[0]
            others = ", ".join(f"{n} ({r.score})" for n, r in usable[1:])
            reason = f"backends.preferred is auto: best-ranked available backend, {rank.reason}"
            reason += f" (rank {rank.score}{'; then ' + others if others else ''})"
            return backends[name], BackendChoice(name, reason, table)
        order = sorted(backends)
    else:
        order = [n for n in preferred if n in backends] + sorted(set(backends) - set(preferred))
    reasons: list[str] = []
    skipped_names: list[str] = []
    for name in order:
        adapter = backends[name]
        status = adapter.availability()
        if status.available and loads(adapter):
            skipped = f" (skipped: {', '.join(skipped_names)})" if skipped_names else ""
            if name in preferred:
                why = f"first available in backends.preferred {list(preferred)}{skipped}"
            else:
                why = f"available; none of backends.preferred {list(preferred)} is{skipped}"
            return adapter, BackendChoice(name, why)
        reasons.append(f"{name}: {status.reason if not status.available else 'wrong format'}")
        skipped_names.append(f"{name} {'unavailable' if not status.available else 'wrong format'}")
    detail = "; ".join(reasons) or "no backend plugin is installed"
    raise BackendError(f"no usable backend ({detail}); install one, e.g. {install_command('onnx')}")


def _requested(
    backends: Mapping[str, BackendAdapter],
    requested: str,
    weight_formats: tuple[str, ...] | None,
    loads: Callable[[BackendAdapter], bool],
) -> BackendAdapter:
    adapter = backends.get(requested)
    if adapter is None:
        known = ", ".join(sorted(backends)) or "none"
        advice = (
            f"install it: {install_command(requested)}"
            if requested in BACKEND_DISTRIBUTIONS
            else "no published backend has that name (coral plugins list --group backends "
            "shows what is installed)"
        )
        raise BackendError(
            f"backend {requested!r} is not registered (registered: {known}); {advice}"
        )
    status = adapter.availability()
    if not status.available:
        raise BackendError(f"backend {requested!r} is not available here: {status.reason}")
    if not loads(adapter):
        raise BackendError(
            f"backend {requested!r} loads {', '.join(adapter.formats)} weights but the model"
            f" package has {', '.join(weight_formats or ())}"
        )
    return adapter
