"""Test videos: faces built independently of the demo generator (a mirrored astronaut face
pasted at grid positions and stepped scales over a coffee-cup photo, with stretches of empty
frames), and plain short clips for tests that only need a source that ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from coral_inference.models.sample import ASTRONAUT_FACE_XYXY

PHOTO_SIZE = 512


def make_face_video(path: Path, size: tuple[int, int], frames: int = 40, fps: float = 20):
    """Write ``path``; return per-frame ground-truth face boxes ([] for empty frames)."""
    import cv2
    from skimage import data

    width, height = size
    background = cv2.resize(data.coffee()[..., ::-1], (width, height), interpolation=cv2.INTER_AREA)
    photo = np.ascontiguousarray(data.astronaut()[:, ::-1, ::-1])  # mirrored, BGR
    x1, y1, x2, y2 = ASTRONAUT_FACE_XYXY
    x1, x2 = PHOTO_SIZE - x2, PHOTO_SIZE - x1
    face_w, face_h = x2 - x1, y2 - y1
    crop = (
        int(x1 - 0.5 * face_w),
        int(max(0, y1 - 0.4 * face_h)),
        int(x2 + 0.5 * face_w),
        int(y2 + 0.6 * face_h),
    )
    truth: list[list[list[float]]] = []
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    rng = np.random.default_rng(7)
    for index in range(frames):
        frame = background.copy()
        if index % 10 >= 8:  # two empty frames in every ten
            truth.append([])
            writer.write(frame)
            continue
        target_h = [60, 90, 130, 170][index % 4] * min(1.0, min(width, height) / 400)
        scale = target_h / face_h
        patch = cv2.resize(
            photo[crop[1] : crop[3], crop[0] : crop[2]],
            None,
            fx=scale,
            fy=scale,
            interpolation=cv2.INTER_AREA,
        )
        ph, pw = patch.shape[:2]
        ox = int(rng.integers(0, width - pw + 1))
        oy = int(rng.integers(0, height - ph + 1))
        frame[oy : oy + ph, ox : ox + pw] = patch
        sx, sy = pw / (crop[2] - crop[0]), ph / (crop[3] - crop[1])
        truth.append(
            [
                [
                    ox + (x1 - crop[0]) * sx,
                    oy + (y1 - crop[1]) * sy,
                    ox + (x2 - crop[0]) * sx,
                    oy + (y2 - crop[1]) * sy,
                ]
            ]
        )
        writer.write(frame)
    writer.release()
    return truth


def iou(a: list[float], b: list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def write_plain_video(path: Path, frames: int, fps: float, step: int) -> Path:
    """A 160x120 MJPG clip of ``frames`` flat grey frames, brightening by ``step`` each frame."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    for i in range(frames):
        writer.write(np.full((120, 160, 3), i * step, np.uint8))
    writer.release()
    return path
