"""Declared, version-gated, revertible patches of ``inference`` attributes.

A patch plugin declares a :class:`Patch` and returns ``context.apply(patch)`` from its
``apply_patch`` hook. The runtime then owns the life cycle:

* disabled in config -> ``disabled``; ``inference`` out of the declared range -> ``skipped``;
* every declared target is resolved *before* anything changes, so a missing upstream attribute
  skips the patch with its name instead of half-applying it;
* :meth:`Patch.install` changes attributes only through the :class:`Patcher` it is given, which
  remembers the originals; if ``install`` raises, what it did is rolled back (``failed``);
* a patch is applied once per process: the next ``init`` finds it applied and keeps it, and
  :meth:`Patch.bind` hands it that runtime's services, so what it feeds belongs to the newest
  runtime;
* :func:`revert_all` restores every original in reverse order (identity-equal).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coral_inference.runtime import compat
from coral_inference.runtime.enums import TextEnum

if TYPE_CHECKING:
    from coral_inference.runtime.backends import BackendAdapter
    from coral_inference.runtime.config import RuntimeDescriptor
    from coral_inference.services.runtime_services import RuntimeServices

log = logging.getLogger(__name__)


class PatchStatus(TextEnum):
    """What became of a patch at ``init``."""

    APPLIED = "applied"
    SKIPPED = "skipped"
    DISABLED = "disabled"
    FAILED = "failed"


APPLIED, SKIPPED, DISABLED, FAILED = PatchStatus
_MISSING = object()


@dataclass
class PatchRecord:
    """The outcome of one patch; ``revert`` is set while it is applied."""

    name: str
    status: PatchStatus
    reason: str
    inference_range: str = ""
    targets: list[str] = field(default_factory=list)
    plugin: str | None = None
    revert: Callable[[], None] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "reason": self.reason,
            "inference_range": self.inference_range,
            "targets": list(self.targets),
            "plugin": self.plugin,
        }


class Patcher:
    """Sets attributes on behalf of one patch and can put every original back."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._undo: list[tuple[Any, Any, Any, bool]] = []

    def replace(self, owner: object, attribute: str, value: object) -> object:
        """Set ``owner.attribute = value``; return the attribute's current (original) value."""
        original = getattr(owner, attribute)
        self._undo.append((owner, attribute, vars(owner).get(attribute, _MISSING), False))
        setattr(owner, attribute, value)
        return original

    def wrap(self, owner: object, attribute: str, make_wrapper: Callable[[Any], Any]) -> None:
        """Replace ``owner.attribute`` with ``make_wrapper(original)``."""
        original = getattr(owner, attribute)
        wrapper = make_wrapper(original)
        wrapper.__coral_patch__ = self.name
        wrapper.__wrapped__ = original
        self.replace(owner, attribute, wrapper)

    def set_item(self, mapping: MutableMapping[Any, Any], key: Any, value: Any) -> None:
        """Set ``mapping[key] = value`` (a registry entry); undone like an attribute."""
        self._undo.append((mapping, key, mapping.get(key, _MISSING), True))
        mapping[key] = value

    def undo(self) -> None:
        """Restore every changed attribute and registry entry, newest first."""
        while self._undo:
            owner, key, original, is_item = self._undo.pop()
            if is_item:
                if original is _MISSING:
                    owner.pop(key, None)
                else:
                    owner[key] = original
            elif original is _MISSING:
                delattr(owner, key)
            else:
                setattr(owner, key, original)


class Patch:
    """Base class of a patch: subclasses set the class attributes and implement ``install``."""

    #: The name used in config (``patches.<name>``) and in ``state``.
    name: str = ""
    description: str = ""
    #: PEP 440 range of ``inference`` versions the patch was written and tested for.
    inference: str = ""
    #: ``"module:Qualified.attr"`` paths the patch needs; all resolved before installing.
    targets: tuple[str, ...] = ()

    def install(self, patcher: Patcher, targets: dict[str, Any], context: PatchContext) -> None:
        """Make the change through ``patcher``; ``targets`` maps each declared path to its
        resolved object."""
        raise NotImplementedError

    def finish(self) -> None:
        """Flush and close what the patch's wrappers hold (open sinks), before any patch is
        reverted. :func:`revert_all` calls it on every applied patch oldest first, so a
        wrapper closes after those inside it, as when a pipeline's ``join`` returns. Optional.
        """

    def uninstall(self) -> None:
        """Release what ``install`` started besides attributes (threads, files). Optional."""

    def not_needed(self, context: PatchContext) -> str | None:
        """Why the patch has nothing to do under this configuration (it is then skipped, and
        reverted if an earlier ``init`` applied it), or None."""
        return None

    def settings(self, context: PatchContext) -> object:
        """The configuration the installed patch depends on. When a later ``init`` brings
        different settings, the patch is reverted and installed again with them."""
        return None

    def bind(self, context: PatchContext) -> None:
        """Called before ``install`` and again at every later ``init`` that keeps the patch:
        take what belongs to the runtime (``context.services``) here. Optional."""


_lock = threading.RLock()
_applied: dict[str, tuple[PatchRecord, Patcher, Patch, object]] = {}


class PatchContext:
    """What ``apply_patch`` hooks receive: the configuration and the means to apply a patch."""

    def __init__(
        self,
        config: RuntimeDescriptor,
        inference: compat.InstalledInference,
        platform: str,
        plugin: str | None = None,
        services: RuntimeServices | None = None,
        backends: Mapping[str, BackendAdapter] | None = None,
    ) -> None:
        self.config = config
        self.inference = inference
        self.platform = platform
        self.plugin = plugin
        #: The runtime's services (rings, recordings, metrics) the sink patches feed.
        self.services = services
        #: The runtime's registered backends by name (registered before patches are applied).
        self.backends: Mapping[str, BackendAdapter] = backends or {}

    def for_plugin(self, plugin: str) -> PatchContext:
        return PatchContext(
            self.config, self.inference, self.platform, plugin, self.services, self.backends
        )

    def enabled(self, name: str) -> bool:
        """Whether ``patches.<name>`` is on (patches not named in config default to on)."""
        return bool(self.config.get(f"patches.{name}.enabled", True))

    def options(self, name: str) -> dict[str, Any]:
        """The settings of ``patches.<name>`` (its declared options, without ``enabled``)."""
        return {k: v for k, v in self.config.section(f"patches.{name}").items() if k != "enabled"}

    def apply(self, patch: Patch) -> PatchRecord:
        """Apply ``patch`` unless it is disabled, out of range, or already applied."""
        record = PatchRecord(
            patch.name, SKIPPED, "", patch.inference, list(patch.targets), self.plugin
        )
        with _lock:
            idle = patch.not_needed(self) if self.enabled(patch.name) else None
            if patch.name in _applied:
                previous, _, installed, settings = _applied[patch.name]
                if self.enabled(patch.name) and not idle and settings == patch.settings(self):
                    if not previous.reason.startswith("already applied"):
                        previous.reason = f"already applied in this process ({previous.reason})"
                    installed.bind(self)
                    return previous
                revert(patch.name)
            if not self.enabled(patch.name):
                record.status, record.reason = DISABLED, f"patches.{patch.name} is off"
                return record
            if idle:
                record.reason = idle
                return record
            check = compat.check_range(self.inference.version, patch.inference)
            if not check.ok:
                record.reason = check.reason
                return record
            resolved: dict[str, Any] = {}
            for path in patch.targets:
                try:
                    resolved[path] = compat.import_object(path)
                except ImportError as exc:
                    record.reason = f"{exc} (inference {self.inference.version})"
                    return record
            patcher = Patcher(patch.name)
            try:
                patch.bind(self)
                patch.install(patcher, resolved, self)
            except Exception as exc:  # noqa: BLE001 - never leave a half-applied patch
                patcher.undo()
                record.status = FAILED
                record.reason = f"install raised {type(exc).__name__}: {exc}; rolled back"
                log.warning("patch %s failed: %s", patch.name, exc)
                return record
            record.status, record.reason = APPLIED, check.reason
            record.revert = functools.partial(_revert_quietly, patch.name)
            _applied[patch.name] = (record, patcher, patch, patch.settings(self))
            return record


def _revert_quietly(name: str) -> None:
    revert(name)


def revert(name: str) -> bool:
    """Revert one applied patch; False if it was not applied."""
    with _lock:
        entry = _applied.pop(name, None)
        if entry is None:
            return False
        record, patcher, patch, _ = entry
        try:
            patch.uninstall()
        finally:
            patcher.undo()
            record.revert = None
            record.status, record.reason = SKIPPED, "reverted"
        return True


def revert_all() -> list[str]:
    """Finish every applied patch oldest first (:meth:`Patch.finish`), then revert them newest
    first; return their names."""
    with _lock:
        for name, (_, _, patch, _) in list(_applied.items()):
            try:
                patch.finish()
            except Exception:  # noqa: BLE001 - keep finishing the rest
                log.exception("finishing patch %s failed", name)
        names = list(reversed(_applied))
        for name in names:
            try:
                revert(name)
            except Exception:  # noqa: BLE001 - keep reverting the rest
                log.exception("reverting patch %s failed", name)
        return names


def applied_patches() -> list[str]:
    with _lock:
        return list(_applied)
