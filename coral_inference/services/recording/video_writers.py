"""MP4 encoders for recorded segments: H.264 through PyAV, MPEG-4 Part 2 through OpenCV.

Both writers take BGR ``uint8`` frames of the size they were opened with. Odd widths and heights
are padded by one replicated row/column, since yuv420p needs even dimensions.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
from fractions import Fraction
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

logger = logging.getLogger(__name__)

Codec = Literal["h264", "mp4v"]
_CODECS: tuple[str, ...] = ("auto", "h264", "mp4v")
_TIME_BASE = Fraction(1, 90_000)
_FRAGMENTED_MP4 = "frag_keyframe+empty_moov+default_base_moof"
KEYFRAME_SECONDS = 1


class VideoWriter(Protocol):
    """An open MP4 file that accepts frames until closed."""

    def write(self, frame_bgr: np.ndarray, time_seconds: float) -> None:
        """Encode one frame shown ``time_seconds`` after the start of the file."""

    def close(self) -> None:
        """Flush the encoder and finalise the container; raises if the file is not complete."""


def even_size(width: int, height: int) -> tuple[int, int]:
    """Return the encoded size of a ``width`` x ``height`` frame (rounded up to even)."""
    return width + width % 2, height + height % 2


def pad_to_even(frame: np.ndarray) -> np.ndarray:
    """Return ``frame`` with a replicated last row/column added where a dimension is odd."""
    height, width = frame.shape[:2]
    if width % 2 == 0 and height % 2 == 0:
        return frame
    return cv2.copyMakeBorder(frame, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=1)
def h264_available() -> bool:
    """Tell whether PyAV is installed with the ``libx264`` encoder."""
    try:
        import av

        av.codec.Codec("libx264", "w")
    except Exception:  # ImportError, or FFmpeg built without libx264
        return False
    return True


def resolve_codec(codec: str) -> Codec:
    """Map ``"auto"``/``"h264"``/``"mp4v"`` to the codec to use; raise if it cannot be used."""
    if codec not in _CODECS:
        raise ValueError(f"codec must be one of {_CODECS}, not {codec!r}")
    if codec == "mp4v":
        return "mp4v"
    if h264_available():
        return "h264"
    if codec == "h264":
        raise ValueError("codec 'h264' needs PyAV with libx264 (pip install av)")
    logger.info("PyAV/libx264 not available; recording with OpenCV mp4v")
    return "mp4v"


class H264Writer:
    """H.264/yuv420p in MP4 through PyAV; presentation times follow the frame times given."""

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        *,
        preset: str = "ultrafast",
        crf: int = 23,
    ) -> None:
        """Create ``path`` and write the MP4 header; raise ``OSError`` if it cannot be created."""
        import av
        import av.logging

        # FFmpeg's per-segment encoder statistics would otherwise go to stderr at INFO level.
        if av.logging.get_level() is None:
            av.logging.set_level(av.logging.ERROR)
        # Fragmented MP4 (a fragment per keyframe, one a second): what a crash or SIGKILL
        # leaves behind still plays up to the last fragment and is recovered at the next start.
        self._container = av.open(
            str(path),
            mode="w",
            format="mp4",
            options={"movflags": _FRAGMENTED_MP4, "flush_packets": "1"},
        )
        self._stream = self._container.add_stream(
            "libx264", rate=Fraction(fps).limit_denominator(1001)
        )
        self._stream.width, self._stream.height = even_size(width, height)
        self._stream.pix_fmt = "yuv420p"
        # zerolatency: no lookahead or B-frames, so less CPU and memory per frame on edge
        # CPUs and every frame muxed as soon as it is encoded (nothing lost in the encoder).
        self._stream.options = {
            "preset": preset,
            "tune": "zerolatency",
            "crf": str(crf),
            "g": str(max(1, round(fps)) * KEYFRAME_SECONDS),
        }
        self._stream.codec_context.time_base = _TIME_BASE
        self._last_pts: int | None = None
        self._frame_from_ndarray = av.VideoFrame.from_ndarray
        try:  # PyAV would otherwise open the file only when the first packet is muxed
            self._container.start_encoding()
        except Exception:
            with contextlib.suppress(Exception):
                self._container.close()
            raise

    def write(self, frame_bgr: np.ndarray, time_seconds: float) -> None:
        """Encode one frame; non-increasing times are nudged forward by one tick (1/90000 s)."""
        pts = round(time_seconds / _TIME_BASE)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = pts
        yuv = cv2.cvtColor(pad_to_even(frame_bgr), cv2.COLOR_BGR2YUV_I420)
        frame = self._frame_from_ndarray(yuv, format="yuv420p")
        frame.pts = pts
        self._container.mux(self._stream.encode(frame))

    def close(self) -> None:
        """Flush delayed frames and write the MP4 index (moov atom)."""
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()


class Mp4vWriter:
    """MPEG-4 Part 2 in MP4 through OpenCV; constant frame rate, frame times are ignored."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        """Open ``path``; raise ``OSError`` when OpenCV cannot create it."""
        self._path = path
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        self._writer = cv2.VideoWriter(str(path), fourcc, fps, even_size(width, height))
        if not self._writer.isOpened():
            raise OSError(errno.EIO, "OpenCV cannot open the file for writing", str(path))

    def write(self, frame_bgr: np.ndarray, time_seconds: float) -> None:
        """Encode one frame (OpenCV reports no write errors; :meth:`close` checks the result)."""
        self._writer.write(np.ascontiguousarray(pad_to_even(frame_bgr)))

    def close(self) -> None:
        """Finalise the file and check it opens as a video, since OpenCV fails silently."""
        self._writer.release()
        capture = cv2.VideoCapture(str(self._path))
        playable = capture.isOpened()
        capture.release()
        if not playable:
            raise OSError(errno.EIO, "not a playable MP4 after closing", str(self._path))


def open_video_writer(codec: Codec, path: Path, width: int, height: int, fps: float) -> VideoWriter:
    """Open a writer of the given codec for ``width`` x ``height`` frames at nominal ``fps``."""
    if codec == "h264":
        return H264Writer(path, width, height, fps)
    return Mp4vWriter(path, width, height, fps)
