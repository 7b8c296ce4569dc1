"""Frames from pipeline processes to the server: one memory-mapped slot file per pipeline.

Stream-manager pipelines run in forked processes, so their frames never exist in the server's
memory. :class:`FrameRelayPatch` taps every pipeline (in the forked children too, since they
inherit the patched class) with a :class:`SlotWriter` that copies each processed frame, its
boxes and the pipeline's counters into ``<relay dir>/<pipeline id>.slot``: a fixed header,
the raw BGR pixels and a JSON document. The write is one memcpy on the pipeline thread and never
waits for a reader. :class:`SlotReader` in the server polls the header's sequence number; a
seqlock (odd while the writer is busy) keeps a reader from taking a torn frame. A frame larger
than the slot retires the file (a flag in its header) and writes a bigger one in its place.

The relay directory lives on ``/dev/shm`` when it exists (pages never hit the disk).
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coral_inference.app.preview.source import PreviewFrame
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.patches.tap import PIPELINE_CLASS, tap_pipelines
from coral_inference.runtime.patching import Patch, PatchContext, Patcher
from coral_inference.services.frame_clock import frame_age_ms
from coral_inference.services.percentiles import percentiles
from coral_inference.services.predictions import detection_count, model_time_ms
from coral_inference.services.source_health import SourceHealth, watch_pipeline

log = logging.getLogger(__name__)

MAGIC = b"CRL1"
#: magic, retired flag, sequence, height, width, channels, meta length, pixel capacity
HEADER = struct.Struct("<4sIQIIIIQ")
META_CAPACITY = 64 * 1024
#: Values of the header's flag: 0 live, replaced by a bigger file, pipeline ended.
RETIRED, ENDED = 1, 2
SUFFIX = ".slot"
#: How often the writer refreshes the counters it publishes (seconds).
STATS_INTERVAL = 0.5
#: Frames the published fps, model latency and end-to-end percentiles are computed over.
WINDOW = 100


@dataclass(frozen=True)
class SlotFrame:
    """One frame read from a slot."""

    sequence: int
    image: np.ndarray
    meta: dict[str, Any]


def slot_path(directory: Path, pipeline_id: str) -> Path:
    return directory / f"{pipeline_id}{SUFFIX}"


class SlotWriter:
    """The writing side of one pipeline's slot (lives in the pipeline process)."""

    def __init__(
        self,
        path: Path,
        stats: Callable[[], dict[str, Any]] | None = None,
        model_time: Callable[[dict[str, Any] | None], float | None] | None = None,
        source: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.path = path
        self.stats = stats
        self.model_time = model_time  # ModelTimes.of: also for results without one (workflows)
        self.source = source  # SourceHealth.summary: reconnects, outage seconds, up
        self._lock = threading.Lock()  # frames and source changes publish from two threads
        self._map: mmap.mmap | None = None
        self._capacity = 0
        self._sequence = 0
        self._frames = 0
        self._detections = 0
        self._started = time.monotonic()
        self._last_stats = 0.0
        self._published_stats: dict[str, Any] = {}
        self._times: deque[float] = deque(maxlen=WINDOW)
        self._latencies: deque[float] = deque(maxlen=WINDOW)  # the model's time per frame
        self._ages: deque[float] = deque(maxlen=WINDOW)  # capture to result
        self._last: tuple[np.ndarray, dict[str, Any]] | None = None

    def on_frame(self, predictions: dict[str, Any] | None, frame: Any) -> None:
        image = np.ascontiguousarray(frame.image)
        self._frames += 1
        self._detections += detection_count(predictions)
        now = time.monotonic()
        self._times.append(now)
        self._ages.append(frame_age_ms(frame))
        model_ms = self.model_time(predictions) if self.model_time else model_time_ms(predictions)
        if model_ms is not None:
            self._latencies.append(model_ms)
        if self.stats is not None and now - self._last_stats >= STATS_INTERVAL:
            self._last_stats = now
            self._published_stats = self.stats()
        boxes = [
            {
                k: row.get(k)
                for k in ("x", "y", "width", "height", "confidence", "class", "class_id")
            }
            for row in (predictions or {}).get("predictions") or []
            if isinstance(row, dict)
        ]
        document = {
            "frame_id": frame.frame_id,
            "source_id": frame.source_id,
            "frames": self._frames,
            "detections": self._detections,
            "fps": self._fps(),
            "latency_ms": percentiles(self._latencies),
            "end_to_end_ms": percentiles(self._ages),
            "predictions": boxes,
            "stats": self._published_stats,
            "pid": os.getpid(),
        }
        with self._lock:
            self._last = (image, document)
            self._write(image, self._encoded(document))

    def source_changed(self) -> None:
        """A source went away or came back: publish the last frame again with its state (no
        new frame comes during an outage)."""
        with self._lock:
            if self._last is not None and self._map is not None:
                self._write(self._last[0], self._encoded(self._last[1]))

    def _encoded(self, document: dict[str, Any]) -> bytes:
        if self.source is not None:
            document = {**document, "source": self.source()}
        return _encoded(document)

    def _fps(self) -> float:
        if len(self._times) < 2 or self._times[-1] <= self._times[0]:
            return 0.0
        return round((len(self._times) - 1) / (self._times[-1] - self._times[0]), 2)

    def _write(self, image: np.ndarray, meta: bytes) -> None:
        pixels = image.nbytes
        if self._map is None or pixels > self._capacity:
            self._open(pixels)
        slot = self._map
        assert slot is not None
        height, width = image.shape[:2]
        channels = image.shape[2] if image.ndim == 3 else 1
        self._sequence += 1  # odd: being written
        HEADER.pack_into(slot, 0, MAGIC, 0, self._sequence, 0, 0, 0, 0, self._capacity)
        start = HEADER.size
        slot[start : start + pixels] = image.data.cast("B")
        meta_start = start + self._capacity
        slot[meta_start : meta_start + len(meta)] = meta
        self._sequence += 1  # even: complete
        HEADER.pack_into(
            slot, 0, MAGIC, 0, self._sequence, height, width, channels, len(meta), self._capacity
        )

    def _open(self, pixels: int) -> None:
        if self._map is not None:  # retire the old file: readers reopen by name
            struct.pack_into("<I", self._map, 4, RETIRED)
            self._map.close()
        capacity = pixels
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            handle.truncate(HEADER.size + capacity + META_CAPACITY)
        with open(temporary, "r+b") as handle:
            self._map = mmap.mmap(handle.fileno(), 0)
        self._capacity = capacity
        HEADER.pack_into(self._map, 0, MAGIC, 0, self._sequence, 0, 0, 0, 0, capacity)
        os.replace(temporary, self.path)

    def close(self) -> None:
        """The pipeline ended: publish the final counters with its last frame (the recorder
        and metric sinks closed before: the tap is ``closes_last``), flag the slot (that frame
        stays readable) and let go."""
        with self._lock:
            if self._last is not None and self.stats is not None:
                image, document = self._last
                self._write(image, self._encoded({**document, "stats": self.stats()}))
            self._finish()

    def _finish(self) -> None:
        if self._map is not None:
            struct.pack_into("<I", self._map, 4, ENDED)
            self._map.close()
            self._map = None


def _encoded(document: dict[str, Any]) -> bytes:
    return json.dumps(document, default=str).encode()[:META_CAPACITY]


class SlotReader:
    """The server's side of one pipeline's slot; the preview's frame source in ``coral
    serve``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._map: mmap.mmap | None = None

    def read(self, after: int = 0) -> SlotFrame | None:
        """The newest complete frame if its sequence is above ``after``, else None."""
        for _ in range(3):
            slot = self._mapped()
            if slot is None:
                return None
            _, retired, sequence, height, width, channels, meta_len, capacity = HEADER.unpack_from(
                slot, 0
            )
            if retired == RETIRED:
                self.close()
                continue
            if sequence <= after or sequence % 2 or not height:
                return None
            pixels = height * width * channels
            start = HEADER.size
            image = np.frombuffer(slot, np.uint8, pixels, start).copy()
            meta_start = start + capacity
            meta = bytes(slot[meta_start : meta_start + meta_len])
            if HEADER.unpack_from(slot, 0)[2] != sequence:
                continue  # the writer moved on while we copied
            shape = (height, width, channels) if channels > 1 else (height, width)
            try:
                info = json.loads(meta)
            except ValueError:
                continue
            return SlotFrame(sequence, image.reshape(shape), info)
        return None

    def next_frame(self, after: int) -> PreviewFrame | None:
        """The newest frame above ``after`` for the preview (a
        :class:`~coral_inference.app.preview.source.FrameSource`)."""
        frame = self.read(after)
        if frame is None:
            return None
        return PreviewFrame(
            frame.sequence, frame.image, {"predictions": frame.meta.get("predictions")}
        )

    def meta(self) -> dict[str, Any] | None:
        """The newest frame's JSON document without its pixels (None before any frame)."""
        frame = self.read()
        return None if frame is None else frame.meta

    @property
    def ended(self) -> bool:
        """Whether the writer closed the slot (its pipeline ended)."""
        slot = self._mapped()
        return slot is not None and HEADER.unpack_from(slot, 0)[1] == ENDED

    def _mapped(self) -> mmap.mmap | None:
        if self._map is None:
            try:
                with open(self.path, "rb") as handle:
                    self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except (FileNotFoundError, ValueError):
                return None
        return self._map

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


class FrameRelayPatch(Patch):
    """Taps every pipeline with a :class:`SlotWriter` into ``directory`` (applied by
    ``coral serve`` itself, reverted with the runtime)."""

    name = "serve_frame_relay"
    description = "coral serve: frames and counters of pipeline processes to the server"
    inference = TESTED_INFERENCE
    targets = (PIPELINE_CLASS,)

    def __init__(
        self,
        directory: Path,
        stats: Callable[[str], Callable[[], dict[str, Any]]] | None = None,
        model_time: Callable[[dict[str, Any] | None], float | None] | None = None,
    ) -> None:
        self.directory = directory
        self.stats = stats
        self.model_time = model_time
        self._close_all: Callable[[], None] | None = None

    def settings(self, context: PatchContext) -> object:
        return str(self.directory)

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        def make_sink(pipeline_id: str, pipeline: Any) -> SlotWriter:
            stats = self.stats(pipeline_id) if self.stats is not None else None
            # a server keeps reconnecting for ever: the outages are counted, never given up on
            health = SourceHealth(None)
            writer = SlotWriter(
                slot_path(self.directory, pipeline_id), stats, self.model_time, health.summary
            )
            health.changed = writer.source_changed
            watch_pipeline(pipeline, health)
            return writer

        self._close_all = tap_pipelines(
            patcher, targets[PIPELINE_CLASS], self.name, make_sink, closes_last=True
        )

    def finish(self) -> None:
        if self._close_all is not None:
            self._close_all()
            self._close_all = None

    def uninstall(self) -> None:
        self.finish()
