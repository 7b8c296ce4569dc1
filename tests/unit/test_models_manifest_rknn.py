"""The manifest's optional ``rknn`` section: target SoC, quantisation, toolkit, ONNX twin."""

from __future__ import annotations

import pytest

from coral_inference.models import ModelManifest, ModelPackageError

pytestmark = pytest.mark.core

BASE = {
    "name": "centerface",
    "task": "object-detection",
    "weights": {"rknn": "model.rknn"},
    "input": {"size": [640, 480], "layout": "NHWC", "dtype": "uint8", "scale": 1},
    "classes": ["face"],
    "decoder": {"type": "centerface"},
}
RKNN = {
    "target": "RK3588",
    "quantization": "int8",
    "toolkit_version": "2.5.0",
    "onnx": "model.onnx",
    "onnx_input": {"size": [640, 480], "scale": "1/255", "mean": [0.5, 0.5, 0.5]},
}


def test_rknn_section_round_trips():
    manifest = ModelManifest.from_dict({**BASE, "rknn": RKNN})
    assert manifest.rknn.target == "rk3588" and manifest.rknn.quantization == "int8"
    assert manifest.rknn.onnx_input.scale == pytest.approx(1 / 255)
    assert manifest.input.dtype == "uint8" and manifest.input.layout == "NHWC"
    assert ModelManifest.from_dict(manifest.to_dict()) == manifest


def test_packages_without_rknn_keep_their_json():
    manifest = ModelManifest.from_dict({**BASE, "weights": "model.onnx", "input": {"size": None}})
    assert manifest.rknn is None and "rknn" not in manifest.to_dict()


@pytest.mark.parametrize(
    ("rknn", "field", "words"),
    [
        ({**RKNN, "quantization": "int4"}, "rknn.quantization", "expected one of fp16, int8"),
        ({k: v for k, v in RKNN.items() if k != "target"}, "rknn.target", "missing required"),
        (
            {**RKNN, "onnx_input": {"size": [1, 1], "scale": "x"}},
            "rknn.onnx_input.scale",
            "fraction",
        ),
        ({**RKNN, "quantisation": "int8"}, "rknn.quantisation", "did you mean 'quantization'"),
    ],
)
def test_bad_rknn_sections_name_the_key(rknn, field, words):
    with pytest.raises(ModelPackageError) as caught:
        ModelManifest.from_dict({**BASE, "rknn": rknn})
    assert field in str(caught.value) and words in str(caught.value)
