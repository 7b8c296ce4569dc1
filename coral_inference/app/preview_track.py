"""The video a preview viewer receives: one pipeline's recent frames with their boxes drawn.

Each :class:`RingVideoTrack` follows the pipeline's
:class:`~coral_inference.services.ring.FrameRing` (kept by the ``buffer_sink`` patch) with a
cursor of its own, so any number of viewers see every new frame without taking it from each other
or from other readers of the ring.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Callable

import av
import cv2
import numpy as np
from aiortc import VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from coral_inference.services.annotation import draw_detections
from coral_inference.services.predictions import PredictionBoxes
from coral_inference.services.ring import Entry, FrameRing

CLOCK_RATE = 90_000
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)
PLACEHOLDER_SIZE = (640, 360)


def annotate(entry: Entry) -> np.ndarray:
    """The entry's frame (BGR) with its detections drawn on a copy."""
    return draw_detections(entry.frame.image, PredictionBoxes(entry.predictions))


def placeholder(text: str) -> np.ndarray:
    """A dark 640x360 BGR frame saying ``text``, shown before the pipeline's first frame."""
    width, height = PLACEHOLDER_SIZE
    image = np.full((height, width, 3), 24, np.uint8)
    cv2.putText(
        image,
        text,
        (24, height // 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.6,
        (160, 160, 160),
        1,
        cv2.LINE_AA,
    )
    return image


class RingVideoTrack(VideoStreamTrack):
    """An aiortc video track showing the newest annotated frame of pipeline ``pipeline_id``.

    ``recv`` returns a frame as soon as the ring has a new one (older unseen ones are skipped: a
    slow viewer stays live rather than falling behind). While nothing new arrives (pipeline not
    created or started yet, paused, ended) it repeats the last frame, or a placeholder before the
    first one, every ``idle_interval`` seconds so the browser keeps playing. The ring is polled
    without waiting, every ``poll_interval`` seconds, so the event loop never blocks on it.
    """

    def __init__(
        self,
        pipeline_id: str,
        find_ring: Callable[[str], FrameRing | None] | None = None,
        *,
        poll_interval: float = 0.01,
        idle_interval: float = 0.5,
    ) -> None:
        super().__init__()
        self.pipeline_id = pipeline_id
        self.find_ring = find_ring or current_runtime_ring
        self.poll_interval = poll_interval
        self.idle_interval = idle_interval
        self._ring: FrameRing | None = None
        self._cursor = 0
        self._image: np.ndarray | None = None
        self._start: float | None = None
        self._sent_at = 0.0
        self._pts = -1

    async def recv(self) -> av.VideoFrame:
        image = await self._next_image()
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts, frame.time_base = self._next_pts(), TIME_BASE
        return frame

    async def _next_image(self) -> np.ndarray:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            entry = self._newest_unseen()
            if entry is not None:
                self._image = await asyncio.to_thread(annotate, entry)
                return self._image
            if self._image is None:
                self._image = placeholder(f"waiting for pipeline {self.pipeline_id}")
                return self._image
            if time.monotonic() - self._sent_at >= self.idle_interval:
                return self._image
            await asyncio.sleep(self.poll_interval)

    def _newest_unseen(self) -> Entry | None:
        ring = self.find_ring(self.pipeline_id)
        if ring is None:
            return None
        if ring is not self._ring:  # first sight, or the pipeline was built again
            self._ring, self._cursor = ring, 0
        entry = ring.latest()
        if entry is None or entry.sequence <= self._cursor:
            return None
        self._cursor = entry.sequence
        return entry

    def _next_pts(self) -> int:
        """Wall-clock presentation time on the 90 kHz RTP clock, strictly rising."""
        self._sent_at = now = time.monotonic()
        if self._start is None:
            self._start = now
        self._pts = max(self._pts + 1, int((now - self._start) * CLOCK_RATE))
        return self._pts


def current_runtime_ring(pipeline_id: str) -> FrameRing | None:
    """The ring of ``pipeline_id`` in the running runtime (None without one, or before the
    pipeline's first frame)."""
    from coral_inference.runtime import current

    context = current()
    return context.services.rings.get(pipeline_id) if context is not None else None
