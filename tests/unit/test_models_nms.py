"""Vectorised IoU and NMS against straightforward pure-Python references."""

from __future__ import annotations

import numpy as np
import pytest

from coral_inference.models.nms import box_iou, nms

pytestmark = pytest.mark.core


def iou_reference(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    union += max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    union -= inter
    return inter / union if union > 0 else 0.0


def nms_reference(boxes, scores, classes, threshold, limit=None) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])  # stable: ties keep input order
    kept: list[int] = []
    for i in order:
        if limit is not None and len(kept) == limit:
            break
        if all(
            classes[i] != classes[k] or iou_reference(boxes[i], boxes[k]) <= threshold for k in kept
        ):
            kept.append(i)
    return kept


def clustered_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Boxes in a few clusters, so that many overlap."""
    centres = rng.uniform(50, 450, size=(6, 2))[rng.integers(0, 6, size=n)]
    centres += rng.normal(0, 12, size=(n, 2))
    sizes = rng.uniform(20, 80, size=(n, 2))
    return np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)


def test_box_iou_matches_reference():
    rng = np.random.default_rng(0)
    a, b = clustered_boxes(rng, 30), clustered_boxes(rng, 20)
    a[0] = [5, 5, 5, 9]  # no area
    expected = [[iou_reference(x, y) for y in b] for x in a]
    np.testing.assert_allclose(box_iou(a, b), expected, atol=1e-12)
    assert box_iou(a, a[:0]).shape == (30, 0)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("n_classes", [1, 3])
def test_nms_matches_reference(seed, threshold, n_classes):
    rng = np.random.default_rng(seed)
    n = 300
    boxes = clustered_boxes(rng, n).astype(np.float32)
    scores = rng.choice(np.linspace(0.05, 1, 40), size=n).astype(np.float32)  # with ties
    classes = rng.integers(0, n_classes, size=n)
    keep = nms(boxes, scores, classes, threshold)
    assert keep.dtype == np.int64
    assert keep.tolist() == nms_reference(boxes.astype(np.float64), scores, classes, threshold)


def test_nms_max_detections_and_class_agnostic():
    rng = np.random.default_rng(7)
    boxes = clustered_boxes(rng, 200)
    scores = rng.uniform(size=200)
    classes = rng.integers(0, 4, size=200)
    assert nms(boxes, scores, classes, 0.5, 5).tolist() == nms_reference(
        boxes, scores, classes, 0.5, 5
    )
    agnostic = nms(boxes, scores, None, 0.5)
    assert agnostic.tolist() == nms_reference(boxes, scores, [0] * 200, 0.5)
    assert len(agnostic) < len(nms(boxes, scores, classes, 0.5))


def test_nms_edge_cases():
    empty = nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), 0.5)
    assert empty.shape == (0,) and empty.dtype == np.int64
    same = np.array([[0, 0, 10, 10]] * 3, np.float32)
    assert nms(same, np.array([0.2, 0.9, 0.5]), np.array([0, 0, 1]), 0.5).tolist() == [1, 2]
    assert nms(same, np.ones(3), None, 0.5, max_detections=0).tolist() == []
    # Classes stay apart whatever the coordinates, negative or far out.
    far = np.array([[-100, -100, -50, -50]] * 2 + [[1e5, 1e5, 1e5 + 9, 1e5 + 9]] * 2, np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(far, scores, np.array([3, 0, 3, 0]), 0.1).tolist() == [0, 1, 2, 3]
    assert nms(far, scores, None, 0.1).tolist() == [0, 2]
