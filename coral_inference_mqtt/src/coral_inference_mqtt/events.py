"""Per-class detection events with hysteresis: ``start`` / ``update`` / ``end``.

Pure logic, no broker: an :class:`EventTracker` turns each frame's class counts into events.
A change is reported once it has held for ``hysteresis_frames`` consecutive frames, so a box
flickering for a frame or two causes nothing:

* ``start``: a class absent so far is seen on N frames in a row (count: the latest frame's);
* ``update``: a present class's count differs from the reported one on N frames in a row (the
  latest count is reported); with ``min_interval_ms`` an update waits until that long after the
  class's previous event (capture time), then reports the count of that frame;
* ``end``: a present class is absent on N frames in a row, or the pipeline ends.

Each source of a pipeline is tracked on its own (cameras alternate frames in one pipeline).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: ``reason`` of the ``end`` events a pipeline's end produces.
PIPELINE_ENDED = "pipeline_ended"


@dataclass(frozen=True)
class ClassEvent:
    """One reported change of one class on one source."""

    kind: str  # start | update | end
    class_name: str
    count: int
    previous: int
    source_id: int | None
    frame_id: int
    timestamp: datetime
    reason: str | None = None


def class_counts(predictions: Mapping[str, Any] | None) -> Counter[str] | None:
    """Boxes per class in inference's serialised result; None for a frame without a result."""
    if predictions is None:
        return None
    boxes = predictions.get("predictions") or []
    return Counter(str(box.get("class", "object")) for box in boxes if isinstance(box, Mapping))


@dataclass
class _Pending:
    """A change waiting for its streak: ``present``, ``absent`` or ``changed``."""

    kind: str
    streak: int = 0


class SourceTracker:
    """The reported counts of one source and the changes waiting to be reported."""

    def __init__(self, hysteresis_frames: int, min_interval_ms: int = 0) -> None:
        if hysteresis_frames < 1:
            raise ValueError(f"hysteresis_frames must be >= 1, got {hysteresis_frames}")
        self.hysteresis_frames = hysteresis_frames
        self.min_interval_ms = min_interval_ms
        #: class -> count last reported (present classes only).
        self.reported: dict[str, int] = {}
        self._pending: dict[str, _Pending] = {}
        self._last_event: dict[str, datetime] = {}

    def observe(
        self,
        counts: Mapping[str, int],
        frame_id: int,
        timestamp: datetime,
        source_id: int | None = None,
    ) -> list[ClassEvent]:
        """One frame's counts per class; the events they complete (sorted by class)."""
        events = []
        for name in sorted(set(self.reported) | set(counts) | set(self._pending)):
            reported, seen = self.reported.get(name, 0), counts.get(name, 0)
            if reported == 0:
                wanted = "present" if seen > 0 else None
            elif seen == 0:
                wanted = "absent"
            else:
                wanted = "changed" if seen != reported else None
            if wanted is None:
                self._pending.pop(name, None)
                continue
            pending = self._pending.get(name)
            if pending is None or pending.kind != wanted:
                pending = self._pending[name] = _Pending(wanted)
            pending.streak += 1
            if pending.streak < self.hysteresis_frames:
                continue
            if wanted == "changed" and self._held_back(name, timestamp):
                continue  # stays pending: reported on the first frame past the interval
            kind = {"present": "start", "absent": "end", "changed": "update"}[wanted]
            events.append(
                ClassEvent(
                    kind,
                    name,
                    seen,
                    reported,
                    source_id,
                    frame_id,
                    timestamp,
                    "gone" if kind == "end" else None,
                )
            )
            del self._pending[name]
            self._last_event[name] = timestamp
            if seen:
                self.reported[name] = seen
            else:
                del self.reported[name]
        return events

    def finish(
        self, frame_id: int, timestamp: datetime, source_id: int | None = None
    ) -> list[ClassEvent]:
        """The source ended: ``end`` for every class still reported present."""
        events = [
            ClassEvent("end", name, 0, count, source_id, frame_id, timestamp, PIPELINE_ENDED)
            for name, count in sorted(self.reported.items())
        ]
        self.reported.clear()
        self._pending.clear()
        return events

    def _held_back(self, name: str, timestamp: datetime) -> bool:
        last = self._last_event.get(name)
        if not self.min_interval_ms or last is None:
            return False
        return (timestamp - last).total_seconds() * 1000 < self.min_interval_ms


class EventTracker:
    """One pipeline's trackers, one per source, and the counts they report."""

    def __init__(self, hysteresis_frames: int, min_interval_ms: int = 0) -> None:
        self.hysteresis_frames = hysteresis_frames
        self.min_interval_ms = min_interval_ms
        self.sources: dict[int | None, SourceTracker] = {}
        #: Every class reported so far (the counts payload lists them, 0 when absent).
        self.classes: set[str] = set()
        self.last_frame: tuple[int, datetime] | None = None

    def observe(
        self,
        predictions: Mapping[str, Any] | None,
        frame_id: int,
        timestamp: datetime,
        source_id: int | None = None,
    ) -> list[ClassEvent]:
        """One frame of one source; the events it completes (none for a frame without result)."""
        counts = class_counts(predictions)
        if counts is None:
            return []
        self.last_frame = (frame_id, timestamp)
        tracker = self.sources.get(source_id)
        if tracker is None:
            tracker = self.sources[source_id] = SourceTracker(
                self.hysteresis_frames, self.min_interval_ms
            )
        events = tracker.observe(counts, frame_id, timestamp, source_id)
        self.classes.update(e.class_name for e in events)
        return events

    def finish(self, now: datetime) -> list[ClassEvent]:
        """The pipeline ended: ``end`` for every class still present on any source."""
        frame_id, timestamp = self.last_frame or (0, now)
        events = []
        for source_id, tracker in sorted(self.sources.items(), key=lambda i: str(i[0])):
            events += tracker.finish(frame_id, timestamp, source_id)
        return events

    def counts(self) -> dict[str, int]:
        """Reported count per class, summed over the sources; 0 for classes no longer seen."""
        totals = dict.fromkeys(sorted(self.classes), 0)
        for tracker in self.sources.values():
            for name, count in tracker.reported.items():
                totals[name] += count
        return totals

    def source_counts(self) -> dict[str, dict[str, int]]:
        """Reported counts per source (``str(source_id)`` keys)."""
        return {str(s): dict(sorted(t.reported.items())) for s, t in self.sources.items()}
