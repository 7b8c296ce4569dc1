"""Honest frame times: wall-clock stamps for video files, monotonic capture times for end-to-end.

``inference`` stamps a video file's frames with the *file's creation time* plus the frame's
offset, so two runs on one file produce the same timestamps (and overwrite each other's metric
points) and ``now - stamp`` grows as the file ages. A :class:`FrameClock` belongs to one
pipeline and fixes both:

* frames of a video file are re-stamped ``run start (wall clock) + (frame_id - 1) / fps``;
* the moment each frame was grabbed is taken from ``inference``'s ``FRAME_CAPTURED_EVENT``
  status update on :func:`time.monotonic`, so the end-to-end time (capture to result) does not
  jump when the wall clock is stepped (NTP, RTC sync on boards).

Re-stamped frames are new ``VideoFrame`` objects carrying ``coral_captured_monotonic``; a frame
that already carries it is returned unchanged, so any number of consumers may call
:meth:`FrameClock.restamp` on the same frame.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any

CAPTURED_ATTRIBUTE = "coral_captured_monotonic"
FRAME_CAPTURED_EVENT = "FRAME_CAPTURED"
_MAX_PENDING_CAPTURES = 4096


class FrameClock:
    """One pipeline's clock: its wall-clock start and the capture time of frames in flight."""

    def __init__(self) -> None:
        self.started_wall = datetime.now(timezone.utc)
        self.started_monotonic = time.monotonic()
        self._captured: OrderedDict[tuple[Any, Any], float] = OrderedDict()
        self._lock = threading.Lock()

    def on_status(self, update: Any) -> None:
        """An ``inference`` status handler: remember when each frame was grabbed."""
        if getattr(update, "event_type", None) != FRAME_CAPTURED_EVENT:
            return
        payload = getattr(update, "payload", None) or {}
        key = (payload.get("source_id"), payload.get("frame_id"))
        with self._lock:
            self._captured[key] = time.monotonic()
            if len(self._captured) > _MAX_PENDING_CAPTURES:  # frames dropped before inference
                self._captured.popitem(last=False)

    def captured_monotonic(self, frame: Any) -> float:
        """When ``frame`` was grabbed, on :func:`time.monotonic`.

        Without a capture event (a source that sends none) the wall-clock stamp is mapped onto
        the monotonic clock through the clock's start.
        """
        with self._lock:
            captured = self._captured.pop((frame.source_id, frame.frame_id), None)
        if captured is not None:
            return captured
        stamp = _aware(getattr(frame, "frame_timestamp", None))
        if stamp is None or getattr(frame, "comes_from_video_file", False):
            return time.monotonic()
        return self.started_monotonic + (stamp - self.started_wall).total_seconds()

    def restamp(self, frame: Any) -> Any:
        """``frame`` with an honest timestamp and its capture time (idempotent)."""
        if frame is None or hasattr(frame, CAPTURED_ATTRIBUTE):
            return frame
        captured = self.captured_monotonic(frame)
        stamp = getattr(frame, "frame_timestamp", None)
        fps = getattr(frame, "fps", None)
        if getattr(frame, "comes_from_video_file", False) and fps and frame.frame_id:
            stamp = self.started_wall + timedelta(seconds=(frame.frame_id - 1) / fps)
        try:
            restamped = dataclasses.replace(frame, frame_timestamp=stamp)
        except TypeError:  # not a dataclass: keep the object, only mark it
            restamped = frame
        try:
            object.__setattr__(restamped, CAPTURED_ATTRIBUTE, captured)
        except (AttributeError, TypeError):  # slotted: file stamps exact, end-to-end falls back
            pass
        return restamped

    def restamp_all(self, frames: Any) -> Any:
        """:meth:`restamp` over a pipeline callback's frames (one frame or a list)."""
        if isinstance(frames, list):
            return [self.restamp(frame) for frame in frames]
        return self.restamp(frames)


def frame_age_ms(frame: Any) -> float:
    """Milliseconds from ``frame``'s capture to now (monotonic when the frame was re-stamped)."""
    captured = getattr(frame, CAPTURED_ATTRIBUTE, None)
    if captured is not None:
        return max(0.0, (time.monotonic() - captured) * 1000)
    stamp = _aware(getattr(frame, "frame_timestamp", None))
    if stamp is None:
        return 0.0
    return max(0.0, (datetime.now(timezone.utc) - stamp).total_seconds() * 1000)


def _aware(stamp: datetime | None) -> datetime | None:
    """``inference`` uses naive local times; compare everything as aware UTC."""
    return None if stamp is None else stamp.astimezone(timezone.utc)
