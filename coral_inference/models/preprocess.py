"""Frame → model input tensor, and the geometric :class:`Transform` that undoes it for boxes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .manifest import InputSpec

__all__ = ["Transform", "plan_transform", "prepare"]


@dataclass(frozen=True)
class Transform:
    """Where a source frame landed in the model input.

    The frame was resized to ``scale * source_size`` (per axis) and placed at ``pad`` in an input
    of ``input_size``; both sizes are ``(width, height)``. Box coordinates are continuous pixel
    edges, so a source box ``x`` is at ``x * scale + pad`` in the input, exactly.
    """

    source_size: tuple[int, int]
    input_size: tuple[int, int]
    scale: tuple[float, float]
    pad: tuple[int, int]

    @property
    def resized_size(self) -> tuple[int, int]:
        """``(width, height)`` of the resized frame inside the input."""
        return (
            round(self.source_size[0] * self.scale[0]),
            round(self.source_size[1] * self.scale[1]),
        )

    def to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` xyxy boxes from model-input pixels to source pixels, clipped to the
        frame. Returns a new float32 array."""
        gain = np.array(self.scale * 2, np.float64)
        pad = np.array(self.pad * 2, np.float64)
        limit = np.array(self.source_size * 2, np.float64)
        boxes = (np.asarray(xyxy, np.float64).reshape(-1, 4) - pad) / gain
        return np.clip(boxes, 0.0, limit).astype(np.float32)

    def to_model(self, xyxy: np.ndarray) -> np.ndarray:
        """Map ``(N, 4)`` xyxy boxes from source pixels to model-input pixels (float32)."""
        gain = np.array(self.scale * 2, np.float64)
        pad = np.array(self.pad * 2, np.float64)
        return (np.asarray(xyxy, np.float64).reshape(-1, 4) * gain + pad).astype(np.float32)


def plan_transform(source_size: tuple[int, int], spec: InputSpec) -> Transform:
    """The geometry :func:`prepare` uses for a frame of ``source_size`` ``(width, height)``.

    Fixed size: letterbox scales by ``min(in_w / w, in_h / h)`` and pads (centred or top-left per
    ``spec.align``); stretch resizes to the input size. Dynamic size (``spec.size`` is None): the
    frame is downscaled if its longer side exceeds ``spec.max_side``, then the input is that size
    rounded up to a multiple of ``spec.stride`` — padded (letterbox) or stretched to fill it.
    """
    width, height = source_size
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot prepare an empty frame of size {source_size}")
    if spec.size is None:
        ratio = 1.0 if spec.max_side is None else min(1.0, spec.max_side / max(width, height))
        new_w, new_h = max(1, round(width * ratio)), max(1, round(height * ratio))
        in_w = math.ceil(new_w / spec.stride) * spec.stride
        in_h = math.ceil(new_h / spec.stride) * spec.stride
    else:
        in_w, in_h = spec.size
        ratio = min(in_w / width, in_h / height)
        new_w = min(in_w, max(1, round(width * ratio)))
        new_h = min(in_h, max(1, round(height * ratio)))
    if spec.resize == "stretch":
        new_w, new_h = in_w, in_h
    if spec.align == "center":
        pad = ((in_w - new_w) // 2, (in_h - new_h) // 2)
    else:
        pad = (0, 0)
    return Transform(
        source_size=(width, height),
        input_size=(in_w, in_h),
        scale=(new_w / width, new_h / height),
        pad=pad,
    )


def prepare(image: np.ndarray, spec: InputSpec) -> tuple[np.ndarray, Transform]:
    """Turn a BGR uint8 frame ``(H, W, 3)`` into the model's input tensor.

    Grayscale ``(H, W)`` and BGRA ``(H, W, 4)`` frames are converted to BGR first. The tensor has
    a batch dimension of 1, the manifest's layout, channel order and dtype; float32 tensors hold
    ``(pixel * scale - mean) / std`` and the letterbox padding holds ``pad_value`` normalised the
    same way.

    Returns:
        The tensor and the :class:`Transform` mapping model-input boxes back to ``image``.
    """
    import cv2

    image = _as_bgr(image, cv2)
    transform = plan_transform((image.shape[1], image.shape[0]), spec)
    new_w, new_h = transform.resized_size
    if (new_w, new_h) != transform.source_size:
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    if spec.color == "RGB":
        image = image[..., ::-1]
    return _to_tensor(image, transform, spec), transform


def _as_bgr(image: np.ndarray, cv2) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 numpy image, got {type(image).__name__} "
            f"{getattr(image, 'dtype', '')}".rstrip()
        )
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image.shape}")


def _to_tensor(image: np.ndarray, transform: Transform, spec: InputSpec) -> np.ndarray:
    """Write the resized, colour-ordered ``image`` and the padding into a fresh tensor.

    Layout change, colour order, dtype conversion and scaling happen in one vectorised pass over
    the pixels straight into the tensor (a second, in place, adds the mean term when there is
    one); no intermediate float image is made.
    """
    in_w, in_h = transform.input_size
    x0, y0 = transform.pad
    new_h, new_w = image.shape[:2]
    chw = spec.layout == "NCHW"
    shape = (1, 3, in_h, in_w) if chw else (1, in_h, in_w, 3)
    channel_shape = (3, 1, 1) if chw else (3,)

    std = np.asarray(spec.std, np.float32)
    gain = (np.float32(spec.scale) / std).reshape(channel_shape)
    bias = (-np.asarray(spec.mean, np.float32) / std).reshape(channel_shape)
    identity = bool(np.all(gain == 1) and not np.any(bias))  # always so for uint8 (validated)
    tensor = np.empty(shape, np.uint8 if spec.dtype == "uint8" else np.float32)
    fill = (spec.pad_value * gain + bias).astype(tensor.dtype)

    def area(top: int, bottom: int, left: int, right: int) -> np.ndarray:
        return tensor[0, :, top:bottom, left:right] if chw else tensor[0, top:bottom, left:right]

    region = area(y0, y0 + new_h, x0, x0 + new_w)
    pixels = image.transpose(2, 0, 1) if chw else image
    if identity:
        np.copyto(region, pixels, casting="unsafe")
    else:
        np.multiply(pixels, gain, out=region, casting="unsafe")
        if np.any(bias):
            region += bias

    for strip in (
        area(0, y0, 0, in_w),
        area(y0 + new_h, in_h, 0, in_w),
        area(y0, y0 + new_h, 0, x0),
        area(y0, y0 + new_h, x0 + new_w, in_w),
    ):
        if strip.size:
            strip[...] = fill
    return tensor
