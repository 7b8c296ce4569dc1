"""Box overlap and class-aware non-maximum suppression in numpy."""

from __future__ import annotations

import numpy as np

__all__ = ["box_iou", "nms"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection-over-union of ``(N, 4)`` and ``(M, 4)`` xyxy boxes, shape ``(N, M)``.

    Boxes with no area have an IoU of 0 with everything.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray | None,
    iou_threshold: float,
    max_detections: int | None = None,
) -> np.ndarray:
    """Greedy class-aware non-maximum suppression.

    Boxes are visited by decreasing score (ties keep input order); each kept box suppresses the
    remaining boxes *of the same class* whose IoU with it is greater than ``iou_threshold``.

    Classes are kept apart by shifting each class's boxes by a multiple of the coordinate span,
    so boxes of different classes never overlap; each step then compares the best remaining box
    with all others in one vectorised pass and compacts the survivors.

    Args:
        boxes: ``(N, 4)`` xyxy boxes.
        scores: ``(N,)`` scores.
        class_ids: ``(N,)`` integer classes, or ``None`` for class-agnostic suppression.
        iou_threshold: Overlap above which a lower-scored box is dropped.
        max_detections: Stop once this many boxes are kept (``None``: no limit).

    Returns:
        int64 indices into ``boxes`` of the kept boxes, by decreasing score.
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64).reshape(-1), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[order]
    limit = len(boxes) if max_detections is None else max(0, int(max_detections))
    if class_ids is not None and len(boxes):
        span = boxes.max() - boxes.min() + 1.0
        boxes = boxes + (np.asarray(class_ids).reshape(-1)[order] * span)[:, None]
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None) * np.clip(
        boxes[:, 3] - boxes[:, 1], 0.0, None
    )
    # One row per quantity (x1, y1, x2, y2, area, original index), one column per box, by score.
    table = np.vstack([boxes.T, areas, order.astype(np.float64)])
    keep: list[int] = []
    while table.shape[1] and len(keep) < limit:
        x1, y1, x2, y2, area, index = table[:, 0]
        keep.append(int(index))
        rest = table[:, 1:]
        width = np.minimum(rest[2], x2) - np.maximum(rest[0], x1)
        height = np.minimum(rest[3], y2) - np.maximum(rest[1], y1)
        inter = np.maximum(width, 0.0) * np.maximum(height, 0.0)
        # IoU <= threshold, written without a division so empty unions need no special case.
        table = rest[:, inter <= iou_threshold * (area + rest[4] - inter)]
    return np.asarray(keep, dtype=np.int64)
