"""The frame counters of several recorders added up, as ``coral run`` and ``coral serve``
report them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from coral_inference.services.recording.recorder import RecorderStats

#: The counters of :class:`RecorderStats` that add up (every submitted frame is in one).
COUNTERS = ("frames_written", "dropped", "failed", "pending", "discarded")


def recorder_totals(stats: Iterable[RecorderStats]) -> dict[str, int]:
    """``{"frames_written", "dropped", "failed", "pending", "discarded"}`` summed over
    ``stats``."""
    totals = dict.fromkeys(COUNTERS, 0)
    for snapshot in stats:
        for name in COUNTERS:
            totals[name] += getattr(snapshot, name)
    return totals
