"""FrameClock: wall-clock stamps for video-file frames, monotonic capture times for end-to-end."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from coral_inference.services.frame_clock import FrameClock, frame_age_ms

entities = pytest.importorskip("inference.core.interfaces.camera.entities")
pytestmark = pytest.mark.integration


def frame(frame_id: int, stamp: datetime, from_file: bool, source_id: int = 0):
    return entities.VideoFrame(
        image=np.zeros((2, 2, 3), np.uint8),
        frame_id=frame_id,
        frame_timestamp=stamp,
        fps=20.0,
        source_id=source_id,
        comes_from_video_file=from_file,
    )


class Update:
    def __init__(self, frame_id: int, source_id: int = 0) -> None:
        self.event_type = "FRAME_CAPTURED"
        self.payload = {"frame_id": frame_id, "source_id": source_id}


def test_file_frames_are_stamped_from_the_clock_start_plus_their_position() -> None:
    clock = FrameClock()
    file_time = datetime(2001, 1, 1)  # what inference derives from the file's mtime
    first = clock.restamp(frame(1, file_time, from_file=True))
    tenth = clock.restamp(frame(10, file_time + timedelta(seconds=0.45), from_file=True))
    assert first.frame_timestamp == clock.started_wall
    assert tenth.frame_timestamp == clock.started_wall + timedelta(seconds=9 / 20)
    assert clock.restamp(tenth) is tenth  # idempotent: every consumer may call it


def test_stream_frames_keep_their_capture_stamp() -> None:
    clock = FrameClock()
    stamp = datetime.now()
    restamped = clock.restamp(frame(1, stamp, from_file=False))
    assert restamped.frame_timestamp == stamp


def test_end_to_end_runs_from_the_capture_event_on_the_monotonic_clock() -> None:
    clock = FrameClock()
    clock.on_status(Update(frame_id=7))
    time.sleep(0.05)
    # a wall-clock stamp an hour off (an NTP step, a file's mtime) does not matter
    restamped = clock.restamp(frame(7, datetime.now(timezone.utc) - timedelta(hours=1), True))
    assert 45 <= frame_age_ms(restamped) < 1000


def test_capture_events_of_frames_never_processed_are_bounded() -> None:
    clock = FrameClock()
    for frame_id in range(10_000):
        clock.on_status(Update(frame_id))
    assert len(clock._captured) <= 4096
