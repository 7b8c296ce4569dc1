"""Shared set-up for the benchmarks: the sample package and video, built once into a cache dir."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

CACHE = Path(tempfile.gettempdir()) / "coral-bench"
OFFLINE_ENV = {
    "DISABLE_VERSION_CHECK": "true",
    "TELEMETRY_OPT_OUT": "true",
    "METRICS_ENABLED": "false",
}


def sample_assets() -> tuple[Path, Path]:
    """(package directory, video path) of the demo assets."""
    from coral_inference.models.sample import build_sample_package, generate_sample_video

    package, video = CACHE / "centerface", CACHE / "faces.mp4"
    if not (package / "model.json").is_file():
        build_sample_package(package)
    if not video.is_file():
        generate_sample_video(video)
    return package, video


def read_frames(video: Path, limit: int | None = None) -> list:
    import cv2

    capture = cv2.VideoCapture(str(video))
    frames = []
    while limit is None or len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def median(values: list[float]) -> float:
    return statistics.median(values)
