"""The backend adapter contract: what a chip plugin registers through ``register_backend``."""

from __future__ import annotations

from collections.abc import Mapping
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
    ``coral doctor`` shows); it is optional, not part of this protocol, so callers look it up
    with ``getattr``.
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
BACKEND_DISTRIBUTIONS = {"onnx": "coral_inference_onnx", "rknn": "coral_inference_rknn"}


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
    """Pick the backend to run a model on.

    ``requested`` (``--backend``) must exist and be available. Otherwise the first available
    backend in ``preferred`` order, then any other available one, that loads one of the
    package's ``weight_formats``.
    """

    def loads(adapter: BackendAdapter) -> bool:
        return weight_formats is None or bool(set(adapter.formats) & set(weight_formats))

    if requested is not None:
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
    order = [n for n in preferred if n in backends] + sorted(set(backends) - set(preferred))
    reasons = []
    for name in order:
        adapter = backends[name]
        status = adapter.availability()
        if status.available and loads(adapter):
            return adapter
        reasons.append(f"{name}: {status.reason if not status.available else 'wrong format'}")
    detail = "; ".join(reasons) or "no backend plugin is installed"
    raise BackendError(f"no usable backend ({detail}); install one, e.g. {install_command('onnx')}")
