"""Version probes and safe imports: the one place that knows how ``inference`` is installed.

Nothing here imports ``inference`` unless a caller asks for an object from it, so the CLI's
metadata-only commands stay light.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from packaging.requirements import Requirement

#: Distributions that ship the same top-level ``inference`` module. A requirement on any of
#: them is checked against whichever one is installed.
INFERENCE_DISTRIBUTIONS: tuple[str, ...] = (
    "inference",
    "inference-cpu",
    "inference-gpu",
    "inference-core",
    "inference-jetson",
)
CORE_DISTRIBUTION = "coral-inference"
GATED_NAMES = frozenset((CORE_DISTRIBUTION, *INFERENCE_DISTRIBUTIONS))


@dataclass(frozen=True)
class InstalledInference:
    """Which distribution provides the ``inference`` module, and its version."""

    distribution: str | None
    version: str | None

    @property
    def installed(self) -> bool:
        return self.version is not None

    def describe(self) -> str:
        if not self.installed:
            return "not installed"
        return f"{self.version} (distribution {self.distribution or 'unknown'})"


class ImportObjectError(ImportError):
    """``import_object`` could not find a module or attribute; the message names which."""


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def core_version() -> str:
    """The installed ``coral-inference`` version (``0+unknown`` in a bare source tree)."""
    return _distribution_version(CORE_DISTRIBUTION) or "0+unknown"


def installed_inference(*, allow_import: bool = False) -> InstalledInference:
    """Find the installed ``inference`` from distribution metadata, without importing it.

    The known distribution names are tried first; then any distribution whose files provide the
    top-level ``inference`` package. With ``allow_import`` a source checkout with no metadata
    falls back to ``inference.core.version.__version__``.
    """
    for name in INFERENCE_DISTRIBUTIONS:
        version = _distribution_version(name)
        if version is not None:
            return InstalledInference(name, version)
    for name in metadata.packages_distributions().get("inference", []):
        version = _distribution_version(name)
        if version is not None:
            return InstalledInference(canonicalize_name(name), version)
    if allow_import:
        try:
            module = importlib.import_module("inference.core.version")
        except Exception:  # noqa: BLE001 - any failure means "not usable"
            return InstalledInference(None, None)
        return InstalledInference(None, str(getattr(module, "__version__", "")) or None)
    return InstalledInference(None, None)


def parse_version(text: str) -> Version | None:
    """Parse a version leniently.

    PEP 440 strings parse as they are. Others (``1.2.3-custom+build``, ``v0.54``) fall back to
    their leading dotted release number; ``None`` when not even that is present.
    """
    try:
        return Version(text)
    except InvalidVersion:
        match = re.match(r"\s*v?(\d+(?:\.\d+)*)", text)
        return Version(match.group(1)) if match else None


@dataclass(frozen=True)
class RangeCheck:
    """The outcome of checking one version against one specifier set."""

    ok: bool
    reason: str


def check_range(version: str | None, specifier: str, *, what: str = "inference") -> RangeCheck:
    """Check ``version`` against a PEP 440 ``specifier`` such as ``">=0.50,<1.0"``.

    An empty specifier always passes. A version that cannot be parsed at all passes with a
    reason saying the range was not checked, rather than blocking on a dev build.
    """
    try:
        spec = SpecifierSet(specifier)
    except InvalidSpecifier as exc:
        return RangeCheck(False, f"invalid version range {specifier!r} for {what}: {exc}")
    if not str(spec):
        return RangeCheck(True, f"no {what} range declared")
    shown = specifier.replace(" ", "")
    if version is None:
        return RangeCheck(False, f"needs {what}{shown} but {what} is not installed")
    parsed = parse_version(version)
    if parsed is None:
        return RangeCheck(True, f"{what} {version!r} is not a version; range {shown} not checked")
    if spec.contains(parsed, prereleases=True):
        return RangeCheck(True, f"{what} {version} is in {shown}")
    return RangeCheck(False, f"needs {what}{shown}, installed {what} is {version}")


def requirement_targets(requirement: Requirement) -> str | None:
    """Which gate a requirement belongs to: ``"coral-inference"``, ``"inference"`` or None."""
    name = canonicalize_name(requirement.name)
    if name == CORE_DISTRIBUTION:
        return CORE_DISTRIBUTION
    if name in INFERENCE_DISTRIBUTIONS:
        return "inference"
    return None


def gated_requirements(requires: list[str] | None) -> list[Requirement]:
    """The ``Requires-Dist`` entries that version gating checks, unconditional ones only.

    Requirements behind an extra (``; extra == "x"``) or a marker that does not hold here are
    left out: they do not apply to a plain install.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    gated: list[Requirement] = []
    for line in requires or []:
        name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if name is None or canonicalize_name(name.group(1)) not in GATED_NAMES:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        if requirement_targets(requirement) is not None:
            gated.append(requirement)
    return gated


def import_object(path: str) -> Any:
    """Import ``"package.module:attr.subattr"`` (or a plain dotted module path).

    Raises :class:`ImportObjectError` naming the module or attribute that is missing.
    """
    module_name, _, attr_path = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ImportObjectError(f"cannot import {path!r}: module {exc.name!r} not found") from exc
    except Exception as exc:
        raise ImportObjectError(
            f"cannot import {path!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    walked = module_name
    for part in filter(None, attr_path.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ImportObjectError(
                f"cannot import {path!r}: {walked!r} has no attribute {part!r}"
            ) from exc
        walked = f"{walked}:{part}" if walked == module_name else f"{walked}.{part}"
    return obj
