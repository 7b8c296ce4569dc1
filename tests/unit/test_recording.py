"""Tests of the segmented recorder against real files, real encoders and real decoding."""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from coral_inference.services.annotation import class_color, draw_detections  # noqa: E402
from coral_inference.services.recording.recorder import SegmentedRecorder  # noqa: E402
from coral_inference.services.recording.retention import RetentionPolicy  # noqa: E402
from coral_inference.services.recording.segment_names import (  # noqa: E402
    is_closed_segment,
    partial_path,
    segment_filename,
)
from coral_inference.services.recording.video_writers import h264_available  # noqa: E402

CODECS = [
    pytest.param(
        "h264", marks=pytest.mark.skipif(not h264_available(), reason="PyAV/libx264 missing")
    ),
    "mp4v",
]
START = datetime(2026, 11, 22, 19, 31, 1, tzinfo=timezone.utc)
GRAY = 128


@dataclass
class Boxes:
    """A minimal non-supervision detections object."""

    xyxy: np.ndarray
    confidence: np.ndarray | None
    class_id: np.ndarray | None
    class_name: list[str] | None = None


def frames(count: int, width: int = 160, height: int = 96) -> Iterator[np.ndarray]:
    """Distinct, slightly textured frames."""
    base = np.full((height, width, 3), GRAY, np.uint8)
    for index in range(count):
        frame = base.copy()
        cv2.circle(frame, (index * 3 % width, height // 2), 8, (0, 200, 255), -1)
        yield frame


def timestamps(count: int, fps: float = 25.0) -> list[datetime]:
    return [START + timedelta(seconds=index / fps) for index in range(count)]


def decode(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    decoded = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded.append(frame)
    capture.release()
    return decoded


def segment_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir() if is_closed_segment(path.name))


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def processed(recorder: SegmentedRecorder) -> int:
    stats = recorder.stats
    return stats.frames_written + stats.failed + stats.dropped


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name.startswith("coral_inference") and record.levelno >= logging.ERROR
    ]


@pytest.mark.parametrize("codec", CODECS)
def test_every_submitted_frame_is_written(tmp_path: Path, codec: str) -> None:
    with SegmentedRecorder(tmp_path, fps=25, codec=codec, queue_size=200) as recorder:
        for frame, stamp in zip(frames(150), timestamps(150), strict=True):
            assert recorder.submit(frame, timestamp=stamp, frame_id=1)
    stats = recorder.stats
    assert (stats.frames_written, stats.dropped, stats.failed) == (150, 0, 0)
    assert stats.segments == (tmp_path / "20261122T193101Z_000001.mp4",)
    assert segment_files(tmp_path) == list(stats.segments)
    assert len(decode(stats.segments[0])) == 150
    assert not list(tmp_path.glob("*.partial.mp4"))


@pytest.mark.parametrize("codec", CODECS)
def test_segments_rotate_by_frame_time(tmp_path: Path, codec: str) -> None:
    with SegmentedRecorder(
        tmp_path, fps=25, segment_seconds=1, codec=codec, queue_size=100
    ) as recorder:
        for frame, stamp in zip(frames(80), timestamps(80), strict=True):
            recorder.submit(frame, timestamp=stamp)
    names = [path.name for path in recorder.stats.segments]
    assert names == [
        "20261122T193101Z_000001.mp4",
        "20261122T193102Z_000002.mp4",
        "20261122T193103Z_000003.mp4",
        "20261122T193104Z_000004.mp4",
    ]
    assert [len(decode(path)) for path in recorder.stats.segments] == [25, 25, 25, 5]


def test_segments_rotate_by_frame_count_without_timestamps(tmp_path: Path) -> None:
    with SegmentedRecorder(tmp_path, fps=25, segment_seconds=1, queue_size=100) as recorder:
        for frame in frames(80):
            recorder.submit(frame)
    assert [len(decode(path)) for path in recorder.stats.segments] == [25, 25, 25, 5]


@pytest.mark.skipif(not h264_available(), reason="PyAV/libx264 missing")
def test_h264_presentation_times_follow_timestamps(tmp_path: Path) -> None:
    offsets = [0.0, 0.1, 0.2, 1.0, 1.04, 1.08, 3.0, 3.0]  # a gap and a repeated timestamp
    with SegmentedRecorder(tmp_path, fps=25, codec="h264") as recorder:
        for frame, offset in zip(frames(len(offsets)), offsets, strict=True):
            recorder.submit(frame, timestamp=START + timedelta(seconds=offset))
    capture = cv2.VideoCapture(str(recorder.stats.segments[0]))
    times = []
    while capture.grab():
        times.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000)
    assert times[:-1] == pytest.approx(offsets[:-1], abs=0.002)
    assert times[-1] > times[-2]


@pytest.mark.parametrize("codec", CODECS)
def test_odd_frame_sizes_are_padded(tmp_path: Path, codec: str) -> None:
    with SegmentedRecorder(tmp_path, fps=25, codec=codec) as recorder:
        for frame in frames(20, width=161, height=91):
            recorder.submit(frame)
    decoded = decode(recorder.stats.segments[0])
    assert len(decoded) == 20
    assert decoded[0].shape == (92, 162, 3)


def test_frame_size_change_starts_a_new_segment(tmp_path: Path) -> None:
    with SegmentedRecorder(tmp_path, fps=25) as recorder:
        for frame in [*frames(10, 160, 96), *frames(12, 96, 64)]:
            recorder.submit(frame)
    decoded = [decode(path) for path in recorder.stats.segments]
    assert [len(segment) for segment in decoded] == [10, 12]
    assert [segment[0].shape for segment in decoded] == [(96, 160, 3), (64, 96, 3)]


def test_a_stalled_source_gets_its_segment_closed(tmp_path: Path) -> None:
    with SegmentedRecorder(tmp_path, fps=25, segment_seconds=0.3) as recorder:
        for frame in frames(5):
            recorder.submit(frame)
        wait_for(lambda: len(recorder.stats.segments) == 1, timeout=3)
        assert len(decode(recorder.stats.segments[0])) == 5


def test_draw_detections_leaves_the_input_alone() -> None:
    frame = np.full((96, 160, 3), GRAY, np.uint8)
    boxes = Boxes(np.array([[20, 30, 120, 80]]), np.array([0.5]), np.array([3]), ["dog"])
    drawn = draw_detections(frame, boxes)
    assert (frame == GRAY).all()
    assert tuple(drawn[80, 70]) == class_color(3)  # bottom edge, away from the label
    assert tuple(drawn[55, 70]) == (GRAY,) * 3  # inside the box


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("detections_kind", ["supervision", "duck-typed"])
def test_annotations_appear_in_the_video(tmp_path: Path, codec: str, detections_kind: str) -> None:
    xyxy = np.array([[40.0, 60.0, 200.0, 160.0]])
    if detections_kind == "supervision":
        supervision = pytest.importorskip("supervision")
        detections = supervision.Detections(
            xyxy=xyxy,
            confidence=np.array([0.9]),
            class_id=np.array([2]),
            data={"class_name": np.array(["person"])},
        )
    else:
        detections = Boxes(xyxy, np.array([0.9]), np.array([2]))
    frame = np.full((192, 320, 3), GRAY, np.uint8)
    with SegmentedRecorder(tmp_path / "on", fps=25, codec=codec) as annotated:
        for _ in range(5):
            annotated.submit(frame, detections)
    with SegmentedRecorder(tmp_path / "off", fps=25, codec=codec, annotate=False) as plain:
        for _ in range(5):
            plain.submit(frame, detections)
    edge = decode(annotated.stats.segments[0])[-1][160, 120].astype(int)
    assert np.abs(edge - class_color(2)).max() < 40
    assert np.abs(decode(plain.stats.segments[0])[-1][160, 120].astype(int) - GRAY).max() < 10
    assert (frame == GRAY).all()


def test_malformed_detections_still_record_the_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = Boxes(np.array([[1, 2, 3, 4], [5, 6, 7, 8]]), np.array([0.5]), None)
    with SegmentedRecorder(tmp_path, fps=25) as recorder:
        for frame in frames(3):
            recorder.submit(frame, broken)
    assert recorder.stats.frames_written == 3
    assert sum("cannot draw detections" in record.message for record in caplog.records) == 1


def test_invalid_frames_are_counted_as_failed(tmp_path: Path) -> None:
    with SegmentedRecorder(tmp_path, fps=25) as recorder:
        recorder.submit(np.zeros((10, 10, 3), np.float32))
        recorder.submit(np.zeros((96, 160), np.uint8))  # gray is converted
    assert (recorder.stats.failed, recorder.stats.frames_written) == (1, 1)


def test_close_is_idempotent_and_later_frames_are_dropped(tmp_path: Path) -> None:
    recorder = SegmentedRecorder(tmp_path, fps=25)
    recorder.submit(next(frames(1)))
    assert recorder.close()
    assert recorder.close()
    assert not recorder.submit(next(frames(1)))
    assert (recorder.stats.frames_written, recorder.stats.dropped) == (1, 1)
    assert len(recorder.stats.segments) == 1


class _HeldDetections:
    """Detections whose boxes the writer can only read once ``release`` is set: a writer
    that falls behind, without timing."""

    def __init__(self, release: threading.Event) -> None:
        self._release = release
        self.confidence = self.class_id = None

    @property
    def xyxy(self) -> np.ndarray:
        assert self._release.wait(60), "the test never released the writer"
        return np.zeros((0, 4))


def test_frames_the_writer_has_not_reached_are_pending_never_written(tmp_path: Path) -> None:
    release = threading.Event()
    recorder = SegmentedRecorder(tmp_path, fps=25, queue_size=8)
    for frame in frames(5):
        assert recorder.submit(frame, _HeldDetections(release))
    assert not recorder.close(timeout=0.2)  # the writer is held at the first frame
    held = recorder.stats
    assert (held.frames_written, held.dropped, held.failed, held.pending) == (0, 0, 0, 5)
    release.set()
    assert recorder.close(timeout=60)
    done = recorder.stats
    assert (done.frames_written, done.dropped, done.failed, done.pending) == (5, 0, 0, 0)


def test_full_queue_drops_frames_without_blocking(tmp_path: Path) -> None:
    frame = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), np.uint8)
    recorder = SegmentedRecorder(tmp_path, fps=25, queue_size=2)
    costs = []
    accepted = 0
    for _ in range(1000):
        started = time.perf_counter()
        accepted += recorder.submit(frame)
        costs.append(time.perf_counter() - started)
    assert recorder.close()
    stats = recorder.stats
    assert stats.dropped == 1000 - accepted >= 900
    assert stats.frames_written + stats.dropped == 1000
    assert statistics.median(costs) < 50e-6
    assert sum(costs) < 0.5


def write_segment(directory: Path, index: int, size: int, mtime: float) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / segment_filename(START + timedelta(minutes=index), index)
    path.write_bytes(b"\0" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_retention_deletes_oldest_segments_beyond_the_size_limit(tmp_path: Path) -> None:
    now = time.time()
    old = [
        write_segment(tmp_path / "p1" / "s1", index, 1000, now - 100 + index) for index in (0, 2)
    ]
    sibling = write_segment(tmp_path / "p2" / "s1", 1, 1000, now - 99)
    newest = [
        write_segment(tmp_path / "p1" / "s1", index, 1000, now - 10 + index) for index in (3, 4)
    ]
    unrelated = tmp_path / "p1" / "s1" / "notes.mp4"
    unrelated.write_bytes(b"\0" * 5000)
    in_progress = partial_path(tmp_path / "p1" / "s1" / segment_filename(START, 9))
    in_progress.write_bytes(b"\0" * 5000)
    os.utime(in_progress, (0, 0))
    policy = RetentionPolicy(tmp_path, max_total_bytes=2500, max_age_seconds=3600)
    assert policy.enforce() == [old[0], sibling, old[1]]
    assert all(path.exists() for path in [*newest, unrelated, in_progress])


def test_retention_deletes_segments_older_than_the_age_limit(tmp_path: Path) -> None:
    now = time.time()
    expired = write_segment(tmp_path, 0, 10, now - 8 * 86400)
    kept = write_segment(tmp_path, 1, 10, now - 6 * 86400)
    policy = RetentionPolicy(tmp_path, max_total_bytes=10**9, max_age_seconds=7 * 86400)
    assert policy.enforce() == [expired]
    assert kept.exists()


def test_recorder_applies_a_shared_retention_policy(tmp_path: Path) -> None:
    expired = write_segment(tmp_path / "other" / "cam", 0, 10, time.time() - 3600)
    policy = RetentionPolicy(tmp_path, max_total_bytes=10**9, max_age_seconds=600)
    with SegmentedRecorder(
        tmp_path / "pipe" / "cam", fps=25, segment_seconds=1, retention=policy
    ) as recorder:
        for frame in frames(30):
            recorder.submit(frame)
    assert not expired.exists()
    assert len(recorder.stats.segments) == 2


def test_recorder_keeps_within_its_size_limit(tmp_path: Path) -> None:
    with SegmentedRecorder(tmp_path, fps=25, segment_seconds=1, max_total_bytes=1) as recorder:
        for frame in frames(60):
            recorder.submit(frame)
    assert recorder.stats.segments == ()
    assert segment_files(tmp_path) == []
    assert recorder.stats.frames_written == 60


def submit_paced(recorder: SegmentedRecorder, count: int, interval: float = 0.02) -> None:
    for frame in frames(count):
        recorder.submit(frame, timestamp=datetime.now(timezone.utc))
        time.sleep(interval)


@pytest.mark.parametrize("codec", CODECS)
def test_recording_survives_its_directory_being_replaced_by_a_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, codec: str
) -> None:
    directory = tmp_path / "pipeline" / "source"
    caplog.set_level(logging.DEBUG, logger="coral_inference")
    recorder = SegmentedRecorder(directory, fps=25, codec=codec, queue_size=500, retry_seconds=0.2)
    submit_paced(recorder, 10)
    wait_for(lambda: processed(recorder) == 10)
    shutil.rmtree(directory)
    directory.write_bytes(b"not a directory")  # fails for root too, unlike chmod
    submit_paced(recorder, 40)  # 0.8 s: several retries
    wait_for(lambda: processed(recorder) == 50)
    failing = recorder.stats
    assert failing.failed == 50  # the 10 frames in the lost segment, then every new one
    assert str(directory) in (failing.last_error or "")
    directory.unlink()
    time.sleep(0.25)
    submit_paced(recorder, 30, interval=0)
    assert recorder.close()
    stats = recorder.stats
    assert (stats.frames_written, stats.failed, stats.dropped) == (30, 50, 0)
    assert len(error_records(caplog)) == 1
    assert "retrying" in error_records(caplog)[0].message
    assert any("resumed" in record.message for record in caplog.records)
    assert sum(len(decode(path)) for path in segment_files(directory)) == 30


@pytest.mark.parametrize("codec", CODECS)
def test_slow_sources_are_not_mistaken_for_failures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, codec: str
) -> None:
    recorder = SegmentedRecorder(tmp_path, fps=25, codec=codec, retry_seconds=0.05)
    submit_paced(recorder, 6, interval=0.1)  # frames further apart than the on-disk check
    assert recorder.close()
    assert recorder.stats.frames_written == 6
    assert error_records(caplog) == []


@pytest.fixture
def tiny_filesystem(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(descriptor, b"\0" * 65536):
            pass
    except OSError:
        pass  # full
    finally:
        os.close(descriptor)
    return filler


@pytest.mark.skipif(not h264_available(), reason="PyAV/libx264 missing")
def test_recording_survives_a_full_disk(
    tiny_filesystem: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tiny_filesystem / "pipeline" / "source"
    directory.mkdir(parents=True)
    filler = fill(tiny_filesystem)
    noise = np.random.default_rng(1).integers(0, 256, (180, 320, 3), np.uint8)
    recorder = SegmentedRecorder(
        directory, fps=25, segment_seconds=0.5, codec="h264", queue_size=500, retry_seconds=0.2
    )
    for index in range(40):
        recorder.submit(np.roll(noise, index, axis=1), timestamp=datetime.now(timezone.utc))
        time.sleep(0.02)
    wait_for(lambda: processed(recorder) == 40)
    assert recorder.stats.failed >= 30  # x264 buffers a few frames before anything hits disk
    assert "No space left" in (recorder.stats.last_error or "")
    filler.unlink()
    time.sleep(0.25)
    submit_paced(recorder, 20, interval=0)
    assert recorder.close()
    stats = recorder.stats
    assert stats.frames_written + stats.failed == 60
    assert stats.frames_written >= 20
    assert len(error_records(caplog)) == 1
    assert sum(len(decode(path)) for path in segment_files(directory)) == stats.frames_written


def test_retention_counts_and_deletes_segments_recovery_moved_aside(tmp_path: Path) -> None:
    now = time.time()
    damaged = tmp_path / "20200101T000000Z_000001.damaged.mp4"
    damaged.write_bytes(b"\0" * 2000)
    os.utime(damaged, (now - 100, now - 100))
    kept = write_segment(tmp_path, 1, 1000, now - 10)
    policy = RetentionPolicy(tmp_path, max_total_bytes=1500, max_age_seconds=3600)
    assert policy.enforce() == [damaged]
    assert kept.exists()
