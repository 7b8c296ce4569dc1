"""``RuntimeContext``: what one :func:`coral_inference.init` built, and what it owns."""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass, field
from typing import Any

from coral_inference.models.decoders import DecoderRegistry
from coral_inference.runtime import compat, patching
from coral_inference.runtime.backends import (
    BackendAdapter,
    BackendChoice,
    BackendError,
    choose_backend,
)
from coral_inference.runtime.config import RuntimeDescriptor
from coral_inference.runtime.legacy_spec import with_seed_names
from coral_inference.runtime.plugins import PluginManager
from coral_inference.runtime.records import PluginRecord
from coral_inference.runtime.stash import Stash
from coral_inference.services.runtime_services import RuntimeServices


@dataclass
class RuntimeContext:
    """What ``init`` did and what it owns: ask it for backends and patches, read ``state``, or
    reach the runtime's ``services`` (rings, recordings, metrics) and ``decoders``. Plugins keep
    their own state in ``stash`` (see :mod:`coral_inference.runtime.stash`)."""

    config: RuntimeDescriptor
    platform: str
    inference: compat.InstalledInference
    plugin_manager: PluginManager
    services: RuntimeServices
    decoders: DecoderRegistry = field(default_factory=DecoderRegistry)
    backends: dict[str, BackendAdapter] = field(default_factory=dict)
    backend_plugins: dict[str, str] = field(default_factory=dict)
    patches: dict[str, patching.PatchRecord] = field(default_factory=dict)
    workflow_blocks: list[type] = field(default_factory=list)
    log_messages: list[str] = field(default_factory=list)
    stash: Stash = field(default_factory=Stash)

    def get_backend(
        self, name: str | None = None, formats: tuple[str, ...] | None = None
    ) -> BackendAdapter:
        """The named backend, or the one ``backends.preferred`` picks (a list: the first
        available; ``auto``: the best-ranked available)."""
        return self.choose_backend(name, formats)[0]

    def choose_backend(
        self, name: str | None = None, formats: tuple[str, ...] | None = None
    ) -> tuple[BackendAdapter, BackendChoice]:
        """:meth:`get_backend`, and why that backend (what ``coral init`` reports)."""
        return choose_backend(
            self.backends,
            list(self.config.get("backends.preferred", [])),
            weight_formats=formats,
            requested=name,
        )

    def backend_choice(self) -> dict[str, Any]:
        """The backend a model with any weights would get, and why; ``chosen`` is None, and
        ``reason`` the error, when none is usable."""
        preferred = list(self.config.get("backends.preferred", []))
        try:
            choice = self.choose_backend()[1].to_dict()
        except BackendError as exc:
            choice = {"chosen": None, "reason": str(exc), "ranking": []}
        except Exception as exc:  # noqa: BLE001 - a broken adapter probe is reported, not raised
            choice = {"chosen": None, "reason": f"selection failed: {exc!r}", "ranking": []}
        return {"preferred": preferred, **choice}

    def is_patch_enabled(self, name: str) -> bool:
        record = self.patches.get(name)
        return record is not None and record.status == patching.APPLIED

    @property
    def plugins(self) -> list[PluginRecord]:
        return list(self.plugin_manager.records.values())

    def problems(self) -> list[str]:
        """Every failed/invalid/incompatible plugin and failed patch, one line each."""
        lines = [f"{r.label}: {r.status}: {r.reason}" for r in self.plugin_manager.problems()]
        lines += [
            f"patch {p.name!r}: {p.status}: {p.reason}"
            for p in self.patches.values()
            if p.status == patching.FAILED
        ]
        return lines

    @property
    def state(self) -> dict[str, Any]:
        return with_seed_names(self._state())  # + plugins_loaded/patches_enabled/backends_enabled

    def _state(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "versions": {
                "python": _platform.python_version(),
                "coral_inference": compat.core_version(),
                "inference": self.inference.version,
                "inference_distribution": self.inference.distribution,
            },
            "backends": {
                name: {
                    "plugin": self.backend_plugins.get(name),
                    "formats": list(adapter.formats),
                    **_availability(adapter),
                }
                for name, adapter in self.backends.items()
            },
            "backend_choice": self.backend_choice(),
            "patches": {name: record.to_dict() for name, record in self.patches.items()},
            "plugins": [record.to_dict() for record in self.plugins],
            "workflow_blocks": [f"{b.__module__}.{b.__qualname__}" for b in self.workflow_blocks],
            "decoders": list(self.decoders.names()),
            "problems": self.problems(),
            "log_messages": list(self.log_messages),
        }


def _availability(adapter: BackendAdapter) -> dict[str, Any]:
    try:
        status = adapter.availability()
        return {"available": status.available, "reason": status.reason}
    except Exception as exc:  # noqa: BLE001 - a broken probe is reported, not raised
        return {"available": False, "reason": f"availability() raised {exc!r}"}
