"""The detections track beside each recorded segment, against real files and real encoders."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from coral_inference.services.recording.recorder import SegmentedRecorder  # noqa: E402
from coral_inference.services.recording.recovery import recover_partial_segments  # noqa: E402
from coral_inference.services.recording.retention import RetentionPolicy  # noqa: E402
from coral_inference.services.recording.track import read_track, track_path  # noqa: E402

START = datetime(2026, 11, 22, 19, 31, 1, tzinfo=timezone.utc)


class Boxes:
    def __init__(self, index: int) -> None:
        self.xyxy = np.array([[index, 10.0, index + 20.0, 40.0]])
        self.confidence = np.array([0.5 + index / 1000])
        self.class_id = np.array([index % 3])
        self.class_name = [f"c{index % 3}"]


def frame(index: int) -> np.ndarray:
    image = np.full((96, 160, 3), 128, np.uint8)
    cv2.circle(image, (index * 3 % 160, 48), 8, (0, 200, 255), -1)
    return image


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def test_each_segment_has_a_track_with_a_line_per_frame(tmp_path: Path) -> None:
    with SegmentedRecorder(tmp_path, fps=25, segment_seconds=1, queue_size=100) as recorder:
        for index in range(60):
            stamp = START + timedelta(seconds=index / 25)
            recorder.submit(frame(index), Boxes(index), timestamp=stamp, frame_id=index + 1)
    segments = recorder.stats.segments
    assert len(segments) == 3
    rows = []
    for segment in segments:
        track = read_track(track_path(segment))
        assert len(track) == count_frames(segment)  # one line per frame the video holds
        assert track[0]["t"] == 0.0
        rows += track
    assert [row["frame_id"] for row in rows] == list(range(1, 61))
    assert rows[26]["t"] == pytest.approx(1 / 25)  # from its segment's start
    assert rows[26]["time"] == "2026-11-22T19:31:02.040Z"
    assert rows[26]["detections"] == [
        {"xyxy": [26.0, 10.0, 46.0, 40.0], "confidence": 0.526, "class_id": 2, "class": "c2"}
    ]
    assert not list(tmp_path.glob("*.partial.*"))


def test_frames_without_detections_and_malformed_ones_still_get_a_line(tmp_path: Path) -> None:
    malformed = Boxes(1)
    malformed.confidence = np.array([0.1, 0.2])  # two values for one box
    with SegmentedRecorder(tmp_path, fps=25) as recorder:
        recorder.submit(frame(0), None, timestamp=START)
        recorder.submit(frame(1), malformed, timestamp=START + timedelta(seconds=0.04))
    (segment,) = recorder.stats.segments
    assert [row["detections"] for row in read_track(track_path(segment))] == [[], []]
    assert recorder.stats.frames_written == 2


def test_no_track_when_switched_off(tmp_path: Path) -> None:
    with SegmentedRecorder(tmp_path, fps=25, track=False) as recorder:
        recorder.submit(frame(0), Boxes(0), timestamp=START)
    assert [p.suffix for p in tmp_path.iterdir()] == [".mp4"]


def test_a_crash_leaves_a_track_that_recovery_keeps_with_its_segment(tmp_path: Path) -> None:
    partial = tmp_path / "20261122T193101Z_000001.partial.mp4"
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 96))
    for index in range(5):
        writer.write(frame(index))
    writer.release()
    track_path(partial).write_text('{"t":0.0,"detections":[]}\n{"t":0.04,"detec')  # torn
    (outcome,) = recover_partial_segments(tmp_path)
    assert read_track(track_path(outcome.result)) == [{"t": 0.0, "detections": []}]
    assert not track_path(partial).exists()


def test_a_damaged_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"t":0.0}\n{"t":\n{"t":0.08}\n')
    with pytest.raises(ValueError):
        read_track(path)


def test_retention_deletes_a_track_with_its_segment_and_counts_its_size(tmp_path: Path) -> None:
    now = time.time()
    old = tmp_path / "20261122T193101Z_000001.mp4"
    new = tmp_path / "20261122T193201Z_000002.mp4"
    for path, age in ((old, 100), (new, 10)):
        path.write_bytes(b"\0" * 600)
        track_path(path).write_bytes(b"\0" * 400)
        os.utime(path, (now - age, now - age))
    policy = RetentionPolicy(tmp_path, max_total_bytes=1500, max_age_seconds=3600)
    assert policy.enforce() == [old]  # 2000 bytes with the tracks: the oldest pair goes
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new.name, track_path(new).name])


def faces_at(tmp_path: Path, seconds_with_faces: set[int], **options: object) -> SegmentedRecorder:
    """Ten one-second segments at 10 fps; frames of the listed seconds hold a detection."""
    recorder = SegmentedRecorder(
        tmp_path, fps=10, segment_seconds=1, queue_size=200, retain="detections", **options
    )
    for index in range(100):
        stamp = START + timedelta(seconds=index / 10)
        detections = Boxes(index) if index // 10 in seconds_with_faces else None
        recorder.submit(frame(index), detections, timestamp=stamp, frame_id=index + 1)
    recorder.close()
    return recorder


def seconds_kept(recorder: SegmentedRecorder) -> list[int]:
    return [int(path.name[13:15]) - 1 for path in recorder.stats.segments]


def test_retain_detections_keeps_the_segments_around_events(tmp_path: Path) -> None:
    recorder = faces_at(tmp_path, {3, 7}, pre_seconds=0.5, post_seconds=0.5)
    # the event seconds, the second before each (its end is 0.1 s before the event) and the
    # one after (it starts 0.1 s after the event's last frame)
    assert seconds_kept(recorder) == [2, 3, 4, 6, 7, 8]
    stats = recorder.stats
    assert (stats.frames_written, stats.discarded, stats.pending) == (60, 40, 0)
    on_disk = sorted(p.name for p in tmp_path.iterdir())
    assert on_disk == sorted(
        [p.name for p in stats.segments] + [track_path(p).name for p in stats.segments]
    )


def test_retain_detections_with_no_margins_and_no_events(tmp_path: Path) -> None:
    recorder = faces_at(tmp_path / "a", {5}, pre_seconds=0, post_seconds=0)
    assert seconds_kept(recorder) == [5]
    recorder = faces_at(tmp_path / "b", set())
    assert recorder.stats.segments == () and recorder.stats.discarded == 100
    assert not list((tmp_path / "b").iterdir())
