"""ONNX inspection, make_dynamic and import_onnx on tiny graphs built with onnx.helper."""

from __future__ import annotations

import re

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from coral_inference.models import (  # noqa: E402
    ModelPackageError,
    import_onnx,
    inspect_onnx,
    make_dynamic,
)


def save(graph, path):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def identity_model(path, shape, elem=TensorProto.FLOAT, inputs=1):
    names = [f"image{i}" for i in range(inputs)]
    graph = helper.make_graph(
        [helper.make_node("Identity", [names[0]], ["out"])],
        "identity",
        [helper.make_tensor_value_info(n, elem, shape) for n in names],
        [helper.make_tensor_value_info("out", elem, shape)],
    )
    return save(graph, path)


def conv_model(path, size=(32, 32), initializers_as_inputs=True):
    """A fixed-size 3x3 stride-2 conv, with its weight also listed as a graph input (as old
    exporters did)."""
    width, height = size
    weight = numpy_helper.from_array(np.full((4, 3, 3, 3), 0.1, np.float32), "w")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, height, width])]
    if initializers_as_inputs:
        inputs.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3]))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1])],
        "conv",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, height // 2, width // 2])],
        initializer=[weight],
    )
    return save(graph, path)


def test_inspect_fixed_nchw(tmp_path):
    info = inspect_onnx(identity_model(tmp_path / "m.onnx", [1, 3, 480, 640]))
    assert (info.name, info.layout, info.dtype, info.size) == (
        "image0",
        "NCHW",
        "float32",
        (640, 480),
    )


@pytest.mark.parametrize("shape", [[1, "height", "width", 3], [1, -1, -1, 3], ["n", 480, "w", 3]])
def test_inspect_dynamic_nhwc_uint8(tmp_path, shape):
    info = inspect_onnx(identity_model(tmp_path / "m.onnx", shape, TensorProto.UINT8))
    assert (info.layout, info.dtype, info.size) == ("NHWC", "uint8", None)


def test_inspect_ignores_initializer_inputs(tmp_path):
    info = inspect_onnx(conv_model(tmp_path / "conv.onnx"))
    assert (info.name, info.shape, info.size) == ("x", (2, 3, 32, 32), (32, 32))


@pytest.mark.parametrize(
    ("shape", "inputs", "needle"),
    [
        ([1, 3, 64, 64], 2, "2 inputs"),
        ([1, 1, 64, 64], 1, "1 channel(s)"),
        ([1, 3, 64], 1, "4-D image batch"),
    ],
)
def test_unsupported_inputs(tmp_path, shape, inputs, needle):
    path = identity_model(tmp_path / "m.onnx", shape, inputs=inputs)
    with pytest.raises(ModelPackageError, match=re.escape(needle)):
        inspect_onnx(path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x08\x01garbage" * 10)
    with pytest.raises(ModelPackageError, match="not a readable ONNX model") as info:
        inspect_onnx(path)
    assert info.value.path == path
    with pytest.raises(ModelPackageError, match="not found"):
        inspect_onnx(tmp_path / "missing.onnx")


def test_make_dynamic_runs_at_any_size(tmp_path):
    fixed = conv_model(tmp_path / "conv.onnx")
    dynamic = make_dynamic(fixed, tmp_path / "out" / "conv.onnx")
    info = inspect_onnx(dynamic)
    assert info.shape == ("batch", 3, "height", "width") and info.size is None
    session = ort.InferenceSession(str(dynamic), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    (output,) = session.get_outputs()
    assert output.shape[:2] == ["batch", 4]
    for batch, height, width in [(1, 64, 96), (3, 20, 30)]:
        x = np.ones((batch, 3, height, width), np.float32)
        (y,) = session.run(None, {"x": x})
        assert y.shape == (batch, 4, height // 2, width // 2)
        np.testing.assert_allclose(y[0, 0, 5, 5], 2.7, rtol=1e-5)  # 27 taps of 0.1


def test_make_dynamic_can_keep_the_batch(tmp_path):
    dynamic = make_dynamic(conv_model(tmp_path / "conv.onnx"), tmp_path / "d.onnx", batch=False)
    assert inspect_onnx(dynamic).shape == (2, 3, "height", "width")


def test_import_onnx(tmp_path):
    source = identity_model(tmp_path / "det.onnx", [1, 3, 480, 640])
    package = import_onnx(
        source,
        tmp_path / "pkg",
        decoder="yolov5",
        classes=["a", "b"],
        decoder_options={"normalized": True},
        input={"color": "BGR", "resize": "stretch"},
        thresholds={"confidence": 0.3},
    )
    manifest = package.manifest
    assert manifest.name == "det"
    assert manifest.input.size == (640, 480)
    assert (manifest.input.color, manifest.input.resize) == ("BGR", "stretch")
    assert manifest.decoder.options == {"normalized": True}
    assert manifest.thresholds.confidence == 0.3
    assert package.weights_path().read_bytes() == source.read_bytes()
    dynamic = import_onnx(source, tmp_path / "dyn", decoder="yolov5", classes=["a"], dynamic=True)
    assert dynamic.manifest.input.size is None
    assert inspect_onnx(dynamic.weights_path()).size is None


def test_import_onnx_reports_manifest_problems_against_the_package(tmp_path):
    source = identity_model(tmp_path / "det.onnx", [1, 3, 64, 64], TensorProto.DOUBLE)
    with pytest.raises(ModelPackageError) as info:
        import_onnx(source, tmp_path / "pkg", decoder="yolov8", classes=["a"])
    assert info.value.path == tmp_path / "pkg" / "model.json"
    assert info.value.field == "input.dtype"
    assert not (tmp_path / "pkg").exists()
