"""Recording annotated video of a pipeline source into rotating, size/age-bounded MP4 segments.

:class:`SegmentedRecorder` is fed from the inference thread through its ``submit`` method, which
only enqueues; a writer thread annotates, encodes, rotates segments, applies retention and survives
disk failures.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from coral_inference.services.annotation import DetectionsLike, draw_detections
from coral_inference.services.background import run_in_background_priority
from coral_inference.services.recording.retention import RetentionPolicy
from coral_inference.services.recording.segment_names import partial_path, segment_filename
from coral_inference.services.recording.track import DetectionTrack, detection_rows, track_path
from coral_inference.services.recording.video_writers import (
    VideoWriter,
    open_video_writer,
    resolve_codec,
)

logger = logging.getLogger(__name__)

GIB = 1024**3
_DAY_SECONDS = 24 * 3600
_IDLE_POLL_SECONDS = 0.5
_DROP_REPORT_SECONDS = 60.0


@dataclass(frozen=True)
class RecorderStats:
    """A snapshot of a recorder's counters.

    At any time ``frames_written + dropped + failed + pending + discarded`` equals the number
    of frames submitted; ``pending`` (queued, not yet written) is 0 once
    :meth:`SegmentedRecorder.close` returned True. Frames of a segment lost to a write error
    move from ``frames_written`` to ``failed``; those of a segment deleted because it held no
    detection (``retain="detections"``) to ``discarded``.
    """

    frames_written: int
    dropped: int
    failed: int
    pending: int
    discarded: int
    segments: tuple[Path, ...]
    last_error: str | None
    last_frame_id: int | None


class _Closed(NamedTuple):
    """A closed segment waiting for the decision of detections-only retention."""

    path: Path
    start: datetime
    end: datetime
    frames: int


class _Item(NamedTuple):
    frame: np.ndarray
    detections: DetectionsLike | None
    timestamp: datetime | None
    frame_id: int | None


class _Segment:
    """The segment being written and what rotation and accounting need to know about it."""

    def __init__(
        self,
        writer: VideoWriter,
        track: DetectionTrack | None,
        path: Path,
        start: datetime,
        shape: tuple[int, ...],
    ):
        self.writer = writer
        self.track = track
        self.path = path
        self.partial = partial_path(path)
        self.start = start
        self.shape = shape
        self.frames = 0
        self.end = start  # the time of its last frame
        self.checked_at = self.written_at = time.monotonic()


_STOP = object()


class SegmentedRecorder:
    """Records frames (optionally annotated with detections) into MP4 segments in ``directory``.

    Segments are named by the UTC time of their first frame and hold ``segment_seconds`` of
    frame time each; a change of frame size also starts a new one. After each segment closes,
    ``retention`` (by default the size/age limits applied to ``directory``) deletes the oldest
    closed segments. With ``track`` each segment gets a detections track beside it (see
    :mod:`.track`). With ``retain="detections"`` a closed segment is kept only when a frame
    with a detection lies between ``post_seconds`` before its start and ``pre_seconds`` after
    its end (footage leading up to and following each event); the others are deleted once the
    frames ``pre_seconds`` past their end were seen (or at close), their frames counted in
    ``stats.discarded``. Disk failures are logged once per outage, counted in
    ``stats.failed``, and retried every ``retry_seconds``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fps: float,
        segment_seconds: float = 60.0,
        max_total_bytes: int = 10 * GIB,
        max_age_seconds: float = 7 * _DAY_SECONDS,
        queue_size: int = 64,
        codec: str = "auto",
        annotate: bool = True,
        track: bool = True,
        retain: str = "all",
        pre_seconds: float = 5.0,
        post_seconds: float = 5.0,
        retention: RetentionPolicy | None = None,
        retry_seconds: float = 5.0,
    ) -> None:
        """Start the writer thread; nothing touches the disk until the first frame arrives.

        ``fps`` is the nominal frame rate (timing of frames without timestamps, and the mp4v
        rate). Pass ``retention`` to share one policy over a whole recording root; it replaces
        ``max_total_bytes``/``max_age_seconds``. Raises ``ValueError`` on invalid settings.
        """
        if fps <= 0 or segment_seconds <= 0 or queue_size <= 0 or retry_seconds <= 0:
            raise ValueError("fps, segment_seconds, queue_size and retry_seconds must be positive")
        if retain not in ("all", "detections") or pre_seconds < 0 or post_seconds < 0:
            raise ValueError("retain is 'all' or 'detections'; pre/post_seconds are >= 0")
        self.directory = Path(directory)
        self.fps = fps
        self.segment_seconds = segment_seconds
        self.annotate = annotate
        self.track = track
        self.retain_detections = retain == "detections"
        self.pre = timedelta(seconds=pre_seconds)
        self.post = timedelta(seconds=post_seconds)
        self.retry_seconds = retry_seconds
        if retention is None:
            retention = RetentionPolicy(
                self.directory, max_total_bytes=max_total_bytes, max_age_seconds=max_age_seconds
            )
        self.retention = retention
        self._codec = resolve_codec(codec)
        self._queue: queue.Queue[_Item | object] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._close_lock = threading.Lock()
        self._closed = False
        self._submitted = 0
        self._frames_written = 0
        self._dropped = 0
        self._failed = 0
        self._discarded = 0
        self._segments: list[Path] = []
        self._last_error: str | None = None
        self._last_frame_id: int | None = None
        # Writer-thread state.
        self._segment: _Segment | None = None
        self._sequence = 0
        self._last_time: datetime | None = None
        self._undecided: deque[_Closed] = deque()  # retain="detections": closed, not judged
        self._events: deque[datetime] = deque()  # times of frames with detections
        self._retry_at = 0.0
        self._failing = False
        self._warned: set[str] = set()
        self._drops_reported = 0
        self._drops_reported_at = float("-inf")
        self._thread = threading.Thread(
            target=self._run, name=f"recorder:{self.directory}", daemon=True
        )
        self._thread.start()

    @property
    def codec(self) -> str:
        """The codec in use: ``"h264"`` or ``"mp4v"``."""
        return self._codec

    @property
    def stats(self) -> RecorderStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return RecorderStats(
                frames_written=self._frames_written,
                dropped=self._dropped,
                failed=self._failed,
                pending=self._submitted
                - self._frames_written
                - self._dropped
                - self._failed
                - self._discarded,
                discarded=self._discarded,
                segments=tuple(self._segments),
                last_error=self._last_error,
                last_frame_id=self._last_frame_id,
            )

    def submit(
        self,
        frame_bgr: np.ndarray,
        detections: DetectionsLike | None = None,
        *,
        timestamp: datetime | None = None,
        frame_id: int | None = None,
    ) -> bool:
        """Queue a frame for recording; return False if it was dropped. Never blocks or raises.

        The array is kept by reference until written, so it must not be modified afterwards.
        ``timestamp`` is the capture time (tz-aware; a naive value is read as local time); without
        it the frame is placed ``1/fps`` after the previous one. The frame is dropped (and
        counted in ``stats.dropped``) when the queue is full or the recorder is closed.
        """
        with self._lock:  # counted before the writer can count it written
            self._submitted += 1
        with self._close_lock:  # close() cannot slip its stop marker in ahead of this frame
            if not self._closed:
                try:
                    self._queue.put_nowait(_Item(frame_bgr, detections, timestamp, frame_id))
                    return True
                except queue.Full:
                    pass
        with self._lock:
            self._dropped += 1
        return False

    def close(self, timeout: float | None = 10.0) -> bool:
        """Write the queued frames, close the segment and stop the thread; idempotent.

        Returns True once the writer thread has finished, False if it is still busy after
        ``timeout`` seconds (it then finishes in the background).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._close_lock:  # from here on submit() drops: every accepted frame is queued
            first = not self._closed
            self._closed = True
        if first:
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                pass  # the writer notices ``_closed`` once the queue runs empty
        self._thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            logger.warning("Recorder for %s still writing after %s s", self.directory, timeout)
            return False
        return True

    def __enter__(self) -> SegmentedRecorder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Writer thread.

    def _run(self) -> None:
        run_in_background_priority()  # encoding yields the CPU to inference
        while True:
            try:
                item = self._queue.get(timeout=_IDLE_POLL_SECONDS)
            except queue.Empty:
                if self._closed:
                    break
                self._close_idle_segment()
                continue
            if item is _STOP:
                break
            assert isinstance(item, _Item)
            try:
                self._record(item)
            except Exception:  # a bug must not stop recording for good
                logger.exception("Unexpected error recording to %s", self.directory)
                self._count_failed()
            self._report_drops()
        if self._segment is not None:
            self._finish_segment()
        self._judge(until=None)

    def _record(self, item: _Item) -> None:
        frame = self._as_bgr(item.frame)
        if frame is None:
            self._count_failed()
            return
        frame_time = self._frame_time(item.timestamp)
        segment = self._segment
        if segment is not None and self._ends_segment(segment, frame, frame_time):
            self._finish_segment()
            segment = None
        if segment is None:
            segment = self._open_segment(frame, frame_time)
            if segment is None:
                self._count_failed()
                return
        image = self._annotated(frame, item.detections)
        seconds = (frame_time - segment.start).total_seconds()
        # the rows feed the track and detections-only retention; built only for them
        rows = self._rows(item) if segment.track is not None or self.retain_detections else []
        try:
            segment.writer.write(image, seconds)
            if segment.track is not None:
                segment.track.append(seconds, frame_time, item.frame_id, rows)
            self._check_still_on_disk(segment)
        except Exception as exc:
            self._abort_segment(exc)
            self._count_failed()
            return
        segment.frames += 1
        segment.end = frame_time
        segment.written_at = time.monotonic()
        with self._lock:
            self._frames_written += 1
            self._last_frame_id = item.frame_id
        if self.retain_detections:
            if rows:
                self._events.append(frame_time)
            self._judge(until=frame_time)

    def _ends_segment(self, segment: _Segment, frame: np.ndarray, frame_time: datetime) -> bool:
        """Tell whether ``frame`` belongs in a new segment: new size, time past the segment's
        length, or time before its start (a clock step backwards)."""
        elapsed = (frame_time - segment.start).total_seconds()
        return frame.shape != segment.shape or not 0 <= elapsed < self.segment_seconds

    def _as_bgr(self, frame: object) -> np.ndarray | None:
        if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.size:
            if frame.ndim == 3 and frame.shape[2] == 3:
                return frame
            if frame.ndim == 2:
                return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            if frame.ndim == 3 and frame.shape[2] == 4:
                return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
        got = f"{type(frame).__name__} {getattr(frame, 'shape', '')} {getattr(frame, 'dtype', '')}"
        self._warn_once(
            "frame",
            f"Recorder for {self.directory} skips frames that are not "
            f"uint8 BGR/gray/BGRA arrays (got {got})",
        )
        return None

    def _annotated(self, frame: np.ndarray, detections: DetectionsLike | None) -> np.ndarray:
        if not self.annotate or detections is None:
            return frame
        try:
            return draw_detections(frame, detections)
        except Exception as exc:  # malformed detections: record the frame without them
            self._warn_once(
                "annotate",
                f"Recorder for {self.directory} cannot draw detections "
                f"({exc!r}); recording frames unannotated",
            )
            return frame

    def _rows(self, item: _Item) -> list[dict[str, object]]:
        try:
            return detection_rows(item.detections)
        except Exception as exc:  # malformed detections: the frame's line holds none
            self._warn_once(
                "track",
                f"Recorder for {self.directory} cannot write detections to the track "
                f"({exc!r}); their lines hold none",
            )
            return []

    def _frame_time(self, timestamp: datetime | None) -> datetime:
        if timestamp is not None:
            frame_time = timestamp.astimezone(timezone.utc)
        elif self._last_time is not None:
            frame_time = self._last_time + timedelta(seconds=1 / self.fps)
        else:
            frame_time = datetime.now(timezone.utc)
        self._last_time = frame_time
        return frame_time

    def _open_segment(self, frame: np.ndarray, start: datetime) -> _Segment | None:
        if time.monotonic() < self._retry_at:
            return None
        sequence = self._sequence + 1
        path = self.directory / segment_filename(start, sequence)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            while path.exists() or partial_path(path).exists():
                sequence += 1
                path = self.directory / segment_filename(start, sequence)
            height, width = frame.shape[:2]
            writer = open_video_writer(self._codec, partial_path(path), width, height, self.fps)
        except Exception as exc:
            self._record_failure(path, exc)
            return None
        track = None
        if self.track:
            try:
                track = DetectionTrack(track_path(partial_path(path)))
            except OSError as exc:
                _close_quietly(writer)
                partial_path(path).unlink(missing_ok=True)
                self._record_failure(path, exc)
                return None
        self._sequence = sequence
        self._segment = _Segment(writer, track, path, start, frame.shape)
        return self._segment

    def _close_idle_segment(self) -> None:
        """Close a segment that has had no frame for ``segment_seconds`` (stalled source), so
        that what it holds becomes playable without waiting for the next frame."""
        segment = self._segment
        if segment is not None and time.monotonic() - segment.written_at >= self.segment_seconds:
            self._finish_segment()

    def _check_still_on_disk(self, segment: _Segment) -> None:
        """Catch a directory deleted or replaced under an open file, which writes do not."""
        now = time.monotonic()
        if now - segment.checked_at >= self.retry_seconds:
            segment.checked_at = now
            segment.partial.stat()

    def _finish_segment(self) -> None:
        segment = self._segment
        assert segment is not None
        try:
            segment.writer.close()
            if segment.track is not None:
                segment.track.close()
                segment.track.path.replace(track_path(segment.path))
            segment.partial.replace(segment.path)
        except Exception as exc:
            self._abort_segment(exc)
            return
        self._segment = None
        if self._failing:  # encoders buffer, so only a closed segment proves the disk works
            self._failing = False
            logger.info("Recording resumed: %s written", segment.path)
        deleted = set(self.retention.enforce())
        with self._lock:
            self._segments.append(segment.path)
            if deleted:
                self._segments = [path for path in self._segments if path not in deleted]
        if self.retain_detections:
            closed = _Closed(segment.path, segment.start, segment.end, segment.frames)
            self._undecided.append(closed)

    def _judge(self, until: datetime | None) -> None:
        """Detections-only retention: decide on the closed segments whose end lies
        ``pre_seconds`` before ``until`` (all of them when None: no frame comes after)."""
        while self._undecided and (until is None or self._undecided[0].end + self.pre < until):
            closed = self._undecided.popleft()
            while self._events and self._events[0] < closed.start - self.post:
                self._events.popleft()  # too early for this segment and every later one
            if self._events and self._events[0] <= closed.end + self.pre:
                continue  # an event inside, or close enough before or after
            self._discard(closed)

    def _discard(self, closed: _Closed) -> None:
        with self._lock:
            if closed.path not in self._segments:
                return  # size/age retention took it already
        try:
            closed.path.unlink(missing_ok=True)
            track_path(closed.path).unlink(missing_ok=True)
        except OSError as exc:
            self._warn_once("discard", f"Cannot delete {closed.path} (no detection): {exc}")
            return
        logger.debug("Deleted %s: no detection near it (retain: detections)", closed.path)
        with self._lock:
            self._segments.remove(closed.path)
            self._frames_written -= closed.frames
            self._discarded += closed.frames

    def _abort_segment(self, exc: Exception) -> None:
        """Discard the current segment after a write error; its frames count as failed."""
        segment = self._segment
        assert segment is not None
        self._segment = None
        _close_quietly(segment.writer)
        if segment.track is not None:
            _close_quietly(segment.track)
        for path in (segment.partial, track_path(segment.partial), track_path(segment.path)):
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass  # e.g. the directory is gone
        with self._lock:
            self._frames_written -= segment.frames
            self._failed += segment.frames
        self._record_failure(segment.partial, exc)

    def _record_failure(self, path: Path, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, OSError) and exc.filename else f"{path}: {exc}"
        self._retry_at = time.monotonic() + self.retry_seconds
        with self._lock:
            self._last_error = reason
        if self._failing:
            logger.debug("Recording still failing: %s", reason)
            return
        self._failing = True
        logger.error(
            "Recording failed (%s); discarding frames and retrying every %.1f s",
            reason,
            self.retry_seconds,
        )

    def _report_drops(self) -> None:
        now = time.monotonic()
        if now - self._drops_reported_at < _DROP_REPORT_SECONDS:
            return
        with self._lock:
            dropped = self._dropped
        if dropped > self._drops_reported:
            logger.warning(
                "Recorder for %s dropped %d frame(s): the writer cannot keep up (queue of %d)",
                self.directory,
                dropped - self._drops_reported,
                self._queue.maxsize,
            )
            self._drops_reported = dropped
            self._drops_reported_at = now

    def _count_failed(self) -> None:
        with self._lock:
            self._failed += 1

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message)


def _close_quietly(closable: VideoWriter | DetectionTrack) -> None:
    """Close a file that is being discarded anyway."""
    try:
        closable.close()
    except Exception:  # noqa: BLE001 - the file is discarded
        pass
