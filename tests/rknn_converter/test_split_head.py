"""Cutting a YOLOv8 head: the split model decodes to the same boxes as the uncut one
(onnxruntime only, no toolkit needed)."""

from __future__ import annotations

import numpy as np
import pytest
from yolo_graph import STRIDES, build_yolov8_package, square_images

from coral_inference.models.decoders import DecodeContext, get_decoder
from coral_inference.models.preprocess import prepare
from coral_inference_rknn.convert.split_head import cut_head
from coral_inference_rknn.packaging import rknn_manifest


def test_cut_model_decodes_like_the_stock_head(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    import cv2

    package = build_yolov8_package(tmp_path / "pkg")
    split = tmp_path / "split.onnx"
    assert cut_head(package.weights_path("onnx"), split) == len(STRIDES)
    stock = ort.InferenceSession(str(package.weights_path("onnx")))
    cut = ort.InferenceSession(str(split))
    assert [o.shape for o in cut.get_outputs()][:3] == [
        [1, 64, 20, 20],
        [1, 2, 20, 20],
        [1, 1, 20, 20],
    ]
    split_manifest = rknn_manifest(
        package.manifest,
        size=(160, 160),
        target="rk3588",
        quantization="fp16",
        toolkit_version="-",
        decoder={"type": "yolov8_split"},
    )
    total = 0
    for path in sorted(square_images(tmp_path / "img", 6, seed=3).iterdir()):
        tensor, transform = prepare(cv2.imread(str(path)), package.manifest.input)
        context = DecodeContext(transform.input_size, 0.5, 0.45, 100)
        expected = get_decoder("yolov8")(
            stock.run(None, {"images": tensor}), package.manifest, context
        )
        got = get_decoder("yolov8_split")(
            cut.run(None, {"images": tensor}), split_manifest, context
        )
        total += len(expected)
        order_e, order_g = np.argsort(-expected.confidence), np.argsort(-got.confidence)
        np.testing.assert_allclose(got.xyxy[order_g], expected.xyxy[order_e], atol=1e-3)
        np.testing.assert_array_equal(got.class_id[order_g], expected.class_id[order_e])
    assert total >= 6
