"""Decoders on synthetic output tensors built from known boxes, and the decoder registry."""

from __future__ import annotations

import numpy as np
import pytest

from coral_inference.models import (
    DecodeContext,
    ModelManifest,
    ModelPackageError,
    available_decoders,
    get_decoder,
)
from coral_inference.models.decoders import DecoderClash, DecoderRegistry

pytestmark = pytest.mark.core

CLASSES = ["person", "car", "dog"]
INPUT = (640, 480)
# Known objects: cx, cy, w, h (model pixels), class, score.
OBJECTS = [
    (100.0, 120.0, 60.0, 150.0, 0, 0.91),
    (400.0, 300.0, 200.0, 100.0, 1, 0.80),
    (410.0, 305.0, 190.0, 110.0, 2, 0.70),  # overlaps the car but is another class
    (600.0, 50.0, 40.0, 40.0, 2, 0.55),
]


def manifest(decoder: str, classes=CLASSES, **options) -> ModelManifest:
    return ModelManifest.from_dict(
        {
            "name": "synthetic",
            "task": "object-detection",
            "weights": "model.onnx",
            "input": {"size": list(INPUT)},
            "classes": list(classes),
            "decoder": {"type": decoder, **options},
        }
    )


def context(**overrides) -> DecodeContext:
    values = {"input_size": INPUT, "confidence": 0.25, "iou": 0.45, "max_detections": 100}
    return DecodeContext(**{**values, **overrides})


def expected_xyxy(objects=OBJECTS) -> np.ndarray:
    boxes = np.array([o[:4] for o in objects])
    return np.concatenate([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], 1)


def yolo_rows(rng: np.random.Generator, objectness: bool) -> np.ndarray:
    """Rows ``cx, cy, w, h, [obj], scores...``: each object, 3 weaker near-duplicates of it,
    and background rows below any sensible threshold."""
    nc = len(CLASSES)
    extra = 1 if objectness else 0
    rows = []
    for cx, cy, w, h, cls, score in OBJECTS:
        for k in range(4):
            jitter = rng.normal(0, 2, size=4) if k else np.zeros(4)
            row = np.zeros(4 + extra + nc)
            row[:4] = np.array([cx, cy, w, h]) + jitter
            scores = rng.uniform(0, 0.05, size=nc)
            scores[cls] = score - 0.05 * k
            if objectness:  # split the score into objectness x class score
                row[4], scores = 0.95, scores / 0.95
            row[4 + extra :] = scores
            rows.append(row)
    for _ in range(400):
        row = np.zeros(4 + extra + nc)
        row[:4] = rng.uniform([0, 0, 5, 5], [640, 480, 100, 100])
        if objectness:
            row[4] = rng.uniform(0, 1)
            row[5:] = rng.uniform(0, 0.2, size=nc)  # obj x cls stays under 0.25
        else:
            row[4:] = rng.uniform(0, 0.2, size=nc)
        rows.append(row)
    rows = np.array(rows, np.float32)
    return rows[rng.permutation(len(rows))]


def assert_found_objects(found, objects=OBJECTS):
    order = np.argsort([-o[5] for o in objects], kind="stable")
    np.testing.assert_allclose(found.xyxy, expected_xyxy(objects)[order], atol=1e-3)
    np.testing.assert_allclose(found.confidence, [objects[i][5] for i in order], atol=1e-5)
    assert found.class_id.tolist() == [objects[i][4] for i in order]
    assert found.xyxy.dtype == np.float32 and found.confidence.dtype == np.float32
    assert found.class_id.dtype == np.int64


@pytest.mark.parametrize("transposed", [False, True])
def test_yolov8(transposed):
    rows = yolo_rows(np.random.default_rng(0), objectness=False)
    output = rows[None] if transposed else rows.T[None]  # Ultralytics: [1, 4 + nc, N]
    found = get_decoder("yolov8")([output], manifest("yolov8"), context())
    assert_found_objects(found)


def test_yolov8_normalized_and_class_agnostic():
    rows = yolo_rows(np.random.default_rng(1), objectness=False)
    rows[:, :4] /= np.array(INPUT * 2, np.float32)
    decode = get_decoder("yolov8")
    found = decode([rows.T[None]], manifest("yolov8", normalized=True), context())
    assert_found_objects(found)
    agnostic = manifest("yolov8", normalized=True, class_agnostic=True)
    found = decode([rows.T[None]], agnostic, context())
    assert_found_objects(found, [o for i, o in enumerate(OBJECTS) if i != 2])


def test_yolov8_thresholds():
    rows = yolo_rows(np.random.default_rng(2), objectness=False)
    decode = get_decoder("yolov8")
    found = decode([rows.T[None]], manifest("yolov8"), context(confidence=0.6))
    assert_found_objects(found, [o for o in OBJECTS if o[5] >= 0.6])
    found = decode([rows.T[None]], manifest("yolov8"), context(max_detections=2))
    assert_found_objects(found, OBJECTS[:2])
    assert len(decode([rows.T[None]], manifest("yolov8"), context(confidence=0.95))) == 0


def test_yolov8_class_count_mismatch_names_classes():
    rows = yolo_rows(np.random.default_rng(3), objectness=False)
    with pytest.raises(ModelPackageError) as info:
        get_decoder("yolov8")([rows.T[None]], manifest("yolov8", classes=["a", "b"]), context())
    assert info.value.field == "classes"
    assert "[1, 6, N]" in info.value.message


def test_yolov8_bad_option_type():
    rows = yolo_rows(np.random.default_rng(3), objectness=False)
    with pytest.raises(ModelPackageError, match="true or false") as info:
        get_decoder("yolov8")([rows.T[None]], manifest("yolov8", normalized="yes"), context())
    assert info.value.field == "decoder.normalized"


@pytest.mark.parametrize("transposed", [False, True])
def test_yolov5(transposed):
    rows = yolo_rows(np.random.default_rng(4), objectness=True)
    output = rows.T[None] if transposed else rows[None]  # YOLOv5: [1, N, 5 + nc]
    found = get_decoder("yolov5")([output], manifest("yolov5"), context())
    assert_found_objects(found)


def centerface_outputs(faces, score_noise: np.random.Generator, size=(128, 96)):
    """CenterFace outputs encoding ``faces`` (cx, cy, w, h, score) for an input of ``size``."""
    width, height = size
    heatmap = score_noise.uniform(0, 0.2, size=(1, 1, height // 4, width // 4)).astype(np.float32)
    scale = np.zeros((1, 2, height // 4, width // 4), np.float32)
    offset = np.zeros_like(scale)
    landmarks = np.zeros((1, 10, height // 4, width // 4), np.float32)
    for cx, cy, w, h, score in faces:
        gy, gx = cy / 4 - 0.5, cx / 4 - 0.5
        row, col = int(np.floor(gy)), int(np.floor(gx))
        heatmap[0, 0, row, col] = score
        scale[0, :, row, col] = np.log([h / 4, w / 4])
        offset[0, :, row, col] = [gy - row, gx - col]
        # A weaker neighbour predicting the same face: NMS removes it.
        heatmap[0, 0, row, col + 1] = score - 0.1
        scale[0, :, row, col + 1] = scale[0, :, row, col]
        offset[0, :, row, col + 1] = [gy - row, gx - col - 1]
    return [heatmap, scale, offset, landmarks]


def test_centerface():
    faces = [(40.0, 30.0, 20.0, 26.0, 0.9), (90.0, 60.0, 30.0, 40.0, 0.8), (6.0, 90.0, 16, 20, 0.7)]
    outputs = centerface_outputs(faces, np.random.default_rng(5))
    found = get_decoder("centerface")(
        outputs, manifest("centerface", classes=["face"]), context(input_size=(128, 96), iou=0.3)
    )
    expected = np.array(
        [[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2] for cx, cy, w, h, _ in faces]
    )
    expected = np.clip(expected, 0, [128, 96, 128, 96])  # the third face is cut by the edges
    np.testing.assert_allclose(found.xyxy, expected, atol=1e-3)
    np.testing.assert_allclose(found.confidence, [0.9, 0.8, 0.7], atol=1e-6)
    assert found.class_id.tolist() == [0, 0, 0]


def test_registry():
    assert {"centerface", "yolov5", "yolov8"} <= set(available_decoders())
    with pytest.raises(KeyError, match="available: "):
        get_decoder("nope")
    registry = DecoderRegistry()
    with pytest.raises(DecoderClash, match="already registered by .*decode_yolov8"):
        registry.register("yolov8", get_decoder("yolov5"))
    registry.register("yolov8", get_decoder("yolov8"))  # the same function again: harmless
    with pytest.raises(ValueError, match="non-empty string"):
        registry.register("", get_decoder("yolov5"))


def test_registries_are_separate_from_each_other_and_the_builtins():
    one, two = DecoderRegistry(), DecoderRegistry()
    one.register("only-in-one", get_decoder("yolov8"))
    assert "only-in-one" in one.names() and "only-in-one" not in two.names()
    assert "only-in-one" not in available_decoders()
