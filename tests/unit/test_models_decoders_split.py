"""The split-head YOLOv8 decoder against the single-output one on the same boxes.

The uncut head ends in DFL (softmax over 16 bins per side, expected distance), anchor centres
``(x + 0.5, y + 0.5)`` and ``* stride``; here that tail is written out per cell, independently
of the decoder, to build the single ``[1, 4 + nc, N]`` output from the same split tensors.
"""

from __future__ import annotations

import numpy as np
import pytest

from coral_inference.models import DecodeContext, ModelManifest, ModelPackageError, get_decoder

pytestmark = pytest.mark.core

CLASSES = ["person", "car", "dog"]
INPUT = (256, 192)
STRIDES = (8, 16, 32)
BINS = 16


def manifest(decoder: str) -> ModelManifest:
    return ModelManifest.from_dict(
        {
            "name": "synthetic",
            "task": "object-detection",
            "weights": "model.onnx",
            "input": {"size": list(INPUT)},
            "classes": CLASSES,
            "decoder": {"type": decoder},
        }
    )


def split_outputs(rng: np.random.Generator, with_sum: bool = True) -> list[np.ndarray]:
    """Random DFL logits and mostly-low scores with a few confident cells, per stride."""
    width, height = INPUT
    outputs = []
    for stride in STRIDES:
        h, w = height // stride, width // stride
        box = rng.normal(0, 2, (1, 4 * BINS, h, w)).astype(np.float32)
        cls = rng.uniform(0, 0.2, (1, len(CLASSES), h, w)).astype(np.float32)
        for _ in range(3):
            cls[0, rng.integers(len(CLASSES)), rng.integers(h), rng.integers(w)] = rng.uniform(
                0.5, 1
            )
        outputs += [box, cls]
        if with_sum:
            outputs.append(np.clip(cls.sum(axis=1, keepdims=True), 0, 1))
    return outputs


def single_output(split: list[np.ndarray], per_level: int) -> np.ndarray:
    """The uncut head's ``[1, 4 + nc, N]`` from the split tensors, one cell at a time."""
    columns = []
    for level, stride in enumerate(STRIDES):
        box, cls = split[level * per_level], split[level * per_level + 1]
        _, _, h, w = cls.shape
        for y in range(h):
            for x in range(w):
                sides = []
                for side in range(4):
                    logits = box[0, side * BINS : (side + 1) * BINS, y, x].astype(np.float64)
                    p = np.exp(logits - logits.max())
                    sides.append(float((p / p.sum()) @ np.arange(BINS)))
                left, top, right, bottom = sides
                cx, cy = x + 0.5, y + 0.5
                x1, y1, x2, y2 = cx - left, cy - top, cx + right, cy + bottom
                columns.append(
                    [
                        (x1 + x2) / 2 * stride,
                        (y1 + y2) / 2 * stride,
                        (x2 - x1) * stride,
                        (y2 - y1) * stride,
                        *cls[0, :, y, x],
                    ]
                )
    return np.asarray(columns, np.float32).T[None]


@pytest.mark.parametrize("with_sum", [True, False])
def test_split_head_decodes_the_same_boxes_as_the_single_output(with_sum):
    rng = np.random.default_rng(7)
    split = split_outputs(rng, with_sum)
    single = single_output(split, 3 if with_sum else 2)
    context = DecodeContext(input_size=INPUT, confidence=0.4, iou=0.45, max_detections=100)
    expected = get_decoder("yolov8")([single], manifest("yolov8"), context)
    got = get_decoder("yolov8_split")(split, manifest("yolov8_split"), context)
    assert len(expected) >= 5
    order_e, order_g = np.argsort(-expected.confidence), np.argsort(-got.confidence)
    np.testing.assert_allclose(got.xyxy[order_g], expected.xyxy[order_e], atol=1e-3)
    np.testing.assert_allclose(got.confidence[order_g], expected.confidence[order_e])
    np.testing.assert_array_equal(got.class_id[order_g], expected.class_id[order_e])


def test_split_head_with_the_wrong_class_count_names_classes():
    split = split_outputs(np.random.default_rng(1))
    bad = ModelManifest.from_dict(
        {**manifest("yolov8_split").to_dict(), "classes": ["only-one", "two"]}
    )
    context = DecodeContext(input_size=INPUT, confidence=0.4, iou=0.45, max_detections=100)
    with pytest.raises(ModelPackageError, match=r"scores \[1, 2, H, W\] for 2 classes"):
        get_decoder("yolov8_split")(split, bad, context)
