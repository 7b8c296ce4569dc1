"""Drawing detections (boxes and labels) onto recorded frames with OpenCV."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import cv2
import numpy as np

# BGR colours, one per class id (modulo the palette length).
_PALETTE: tuple[tuple[int, int, int], ...] = (
    (56, 56, 255),
    (31, 112, 255),
    (29, 178, 255),
    (49, 210, 207),
    (10, 249, 72),
    (23, 204, 146),
    (134, 219, 61),
    (187, 212, 52),
    (168, 153, 44),
    (255, 194, 0),
    (147, 69, 52),
    (255, 115, 100),
    (236, 24, 0),
    (255, 56, 132),
    (133, 0, 82),
    (255, 56, 203),
)
_NO_CLASS_COLOR = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


class DetectionsLike(Protocol):
    """What :func:`draw_detections` reads: ``supervision.Detections`` satisfies it.

    Class names are taken from a ``class_name`` attribute or from ``data["class_name"]``
    (supervision's convention) when either is present.
    """

    xyxy: Any
    confidence: Any
    class_id: Any


def class_color(class_id: int | None) -> tuple[int, int, int]:
    """Return the BGR colour boxes of ``class_id`` are drawn in."""
    if class_id is None:
        return _NO_CLASS_COLOR
    return _PALETTE[int(class_id) % len(_PALETTE)]


def line_thickness(width: int, height: int) -> int:
    """Return the box line thickness used for a frame of this size."""
    return max(2, round(min(width, height) / 240))


def draw_detections(frame_bgr: np.ndarray, detections: DetectionsLike) -> np.ndarray:
    """Return a copy of ``frame_bgr`` with each detection's box and label drawn on it.

    The input frame is never modified; with no detections it is returned as is.
    """
    height, width = frame_bgr.shape[:2]
    boxes, class_ids, confidences, names = detection_columns(detections)
    if len(boxes) == 0:
        return frame_bgr
    boxes = np.clip(np.nan_to_num(boxes), -1, [width, height, width, height]).round().astype(int)
    thickness = line_thickness(width, height)
    font_scale = max(0.4, min(width, height) / 900)
    out = frame_bgr.copy()
    for (x1, y1, x2, y2), class_id, confidence, name in zip(
        boxes, class_ids, confidences, names, strict=True
    ):
        color = class_color(class_id)
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        label = _label(class_id, confidence, name)
        if label:
            _draw_label(out, label, (x1, y1), color, font_scale)
    return out


def detection_columns(
    detections: DetectionsLike,
) -> tuple[np.ndarray, list[Any], list[Any], list[Any]]:
    """``(xyxy boxes as an (N, 4) float array, class ids, confidences, class names)`` of
    ``detections``; a column the detections lack is a list of None. Raises ``ValueError`` when
    a column's length differs from the number of boxes."""
    boxes = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
    return (
        boxes,
        _optional_column(detections.class_id, len(boxes)),
        _optional_column(detections.confidence, len(boxes)),
        _optional_column(_class_names(detections), len(boxes)),
    )


def _class_names(detections: DetectionsLike) -> Sequence[Any] | None:
    names = getattr(detections, "class_name", None)
    if names is None:
        data = getattr(detections, "data", None)
        if isinstance(data, Mapping):
            names = data.get("class_name")
    return names


def _optional_column(values: Any, length: int) -> list[Any]:
    if values is None:
        return [None] * length
    column = list(np.asarray(values).reshape(-1).tolist())
    if len(column) != length:
        raise ValueError(f"detections have {length} boxes but {len(column)} values in a column")
    return column


def _label(class_id: int | None, confidence: float | None, name: str | None) -> str:
    parts = []
    if name is not None:
        parts.append(str(name))
    elif class_id is not None:
        parts.append(f"#{int(class_id)}")
    if confidence is not None:
        parts.append(f"{confidence:.2f}")
    return " ".join(parts)


def _draw_label(
    image: np.ndarray,
    text: str,
    corner: tuple[int, int],
    color: tuple[int, int, int],
    font_scale: float,
) -> None:
    (text_w, text_h), baseline = cv2.getTextSize(text, _FONT, font_scale, 1)
    x, y = max(corner[0], 0), max(corner[1], text_h + baseline)
    cv2.rectangle(image, (x, y - text_h - baseline), (x + text_w, y), color, cv2.FILLED)
    luminance = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2]
    text_color = (0, 0, 0) if luminance > 128 else (255, 255, 255)
    cv2.putText(image, text, (x, y - baseline), _FONT, font_scale, text_color, 1, cv2.LINE_AA)
