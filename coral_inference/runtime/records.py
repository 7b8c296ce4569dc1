"""What is known about each discovered plugin: its status and the record behind each row of
``coral plugins list``.

The plugin manager (:mod:`~coral_inference.runtime.plugins`) and the original guide's
``PluginSpec`` adaptation (:mod:`~coral_inference.runtime.legacy_spec`) both write records;
neither imports the other for them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from coral_inference.runtime.enums import TextEnum

log = logging.getLogger(__name__)


class PluginStatus(TextEnum):
    """Why a plugin is on, off or broken (the ``STATUS`` column of ``coral plugins list``)."""

    LOADED = "loaded"
    DISABLED = "disabled"
    INCOMPATIBLE = "incompatible"
    FAILED = "failed"
    INVALID = "invalid"


LOADED, DISABLED, INCOMPATIBLE, FAILED, INVALID = PluginStatus
#: The statuses ``--strict`` turns into a non-zero exit.
PROBLEM_STATUSES = frozenset({INCOMPATIBLE, FAILED, INVALID})


@dataclass
class PluginRecord:
    """What is known about one discovered plugin; the rows of ``coral plugins list``."""

    name: str
    group: str
    entry_point: str
    distribution: str | None
    version: str | None
    status: PluginStatus = LOADED
    reason: str = ""
    hooks: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def label(self) -> str:
        """``plugin 'name' (distribution version)``, as log lines and problems name it."""
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"plugin {self.name!r} ({dist})"

    def fail(self, reason: str) -> None:
        """Mark the plugin ``failed`` (an import, factory, hook or activation error)."""
        self.status, self.reason = FAILED, reason
        log.debug("%s failed: %s", self.label, reason)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data (``coral plugins list --json``, ``state``)."""
        data = asdict(self)
        data["status"] = self.status.value
        return data
