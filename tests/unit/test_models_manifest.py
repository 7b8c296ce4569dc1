"""model.json validation: defaults, round trip, and an error naming file + field per problem."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from coral_inference.models import ModelManifest, ModelPackageError
from coral_inference.models.decoders import DecoderRegistry, decode_yolov8

pytestmark = pytest.mark.core

VALID = {
    "name": "yolo-test",
    "task": "object-detection",
    "weights": "model.onnx",
    "input": {"size": [640, 480]},
    "classes": ["person", "car"],
    "decoder": {"type": "yolov8"},
}


def with_change(path: str, value, data=VALID):
    """A copy of ``data`` with the dotted key ``path`` set to ``value`` (``...`` deletes it)."""
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


def test_minimal_manifest_gets_defaults():
    manifest = ModelManifest.from_dict(VALID)
    assert manifest.weights == {"onnx": "model.onnx"}
    assert manifest.input.size == (640, 480)
    assert not manifest.input.dynamic
    assert manifest.input.layout == "NCHW"
    assert manifest.input.resize == "letterbox"
    assert manifest.input.color == "RGB"
    assert manifest.input.scale == pytest.approx(1 / 255)
    assert manifest.classes == ("person", "car")
    assert manifest.decoder.type == "yolov8"
    assert manifest.thresholds.confidence == 0.25


def test_to_dict_round_trips_through_json():
    data = with_change("input", {"size": None, "scale": "1/255", "layout": "nhwc", "max_side": 960})
    data["decoder"] = {"type": "yolov5", "normalized": True}
    data["thresholds"] = {"confidence": 0.4, "iou": 0.5, "max_detections": 10}
    manifest = ModelManifest.from_dict(data)
    assert manifest.input.layout == "NHWC"
    assert manifest.input.dynamic
    assert manifest.decoder.options == {"normalized": True}
    again = ModelManifest.from_dict(json.loads(json.dumps(manifest.to_dict())))
    assert again == manifest


def test_load_reads_file(tmp_path):
    path = tmp_path / "model.json"
    path.write_text(json.dumps(VALID))
    assert ModelManifest.load(path).name == "yolo-test"


def test_error_renders_file_field_and_message():
    with pytest.raises(ModelPackageError) as info:
        ModelManifest.from_dict(with_change("input.size", "abc"))
    error = info.value
    assert str(error).startswith(
        "model.json: input.size: expected two positive integers [width, height], got 'abc'"
    )
    assert (str(error.path), error.field) == ("model.json", "input.size")


@pytest.mark.parametrize(
    ("path", "value", "field", "needle"),
    [
        ("name", ..., "name", "missing required field"),
        ("task", "segmentation", "task", "unsupported task"),
        ("weights", ..., "weights", "missing required field"),
        ("weights", "model", "weights", "cannot tell the format"),
        ("weights", "../model.onnx", "weights.onnx", "inside the package"),
        ("weights", {}, "weights", "at least one"),
        ("input", ..., "input", "missing required field"),
        ("input", [640, 640], "input", "expected a JSON object"),
        ("input.size", ..., "input.size", "missing required field"),
        ("input.size", [0, 640], "input.size", "two positive integers"),
        ("input.size", [640, 640, 3], "input.size", "two positive integers"),
        ("input.size", [640.5, 640], "input.size", "two positive integers"),
        ("input.layout", "NCWH", "input.layout", "did you mean 'NCHW'"),
        ("input.resize", "letterbx", "input.resize", "did you mean 'letterbox'"),
        ("input.color", "GRAY", "input.color", "expected one of RGB, BGR"),
        ("input.szie", [1, 1], "input.szie", "did you mean 'size'"),
        ("input.scale", "1/0", "input.scale", "fraction"),
        ("input.scale", -1, "input.scale", "positive"),
        ("input.mean", [0, 0], "input.mean", "three numbers"),
        ("input.mean", [0, "a", 0], "input.mean[1]", "expected a number"),
        ("input.std", [1, 0, 1], "input.std", "three positive numbers"),
        ("input.pad_value", 300, "input.pad_value", "between 0 and 255"),
        ("input.dtype", "uint8", "input.dtype", "raw pixels"),
        ("input.max_side", 0, "input.max_side", "at least 1"),
        ("classes", [], "classes", "non-empty list"),
        ("classes", ["a", 3], "classes[1]", "non-empty string"),
        ("clases", ["a"], "clases", "did you mean 'classes'"),
        ("decoder", ..., "decoder", "missing required field"),
        ("decoder.type", "yolo8", "decoder.type", "did you mean 'yolov8'"),
        ("decoder.normalised", True, "decoder.normalised", "did you mean 'normalized'"),
        ("thresholds", {"confidence": 1.5}, "thresholds.confidence", "between 0 and 1"),
        ("thresholds", {"max_detections": True}, "thresholds.max_detections", "integer"),
        ("thresholds", {"iuo": 0.5}, "thresholds.iuo", "did you mean 'iou'"),
        ("manifest_version", 2, "manifest_version", "upgrade coral-inference"),
    ],
)
def test_each_problem_names_file_and_field(path, value, field, needle):
    with pytest.raises(ModelPackageError) as info:
        ModelManifest.from_dict(with_change(path, value), source="pkg/model.json")
    error = info.value
    assert str(error.path) == "pkg/model.json"
    assert error.field == field
    assert needle in error.message
    assert str(error) == f"pkg/model.json: {field}: {error.message}"


def test_unknown_decoder_lists_the_available_ones():
    with pytest.raises(ModelPackageError) as info:
        ModelManifest.from_dict(with_change("decoder.type", "nope"))
    for name in ("centerface", "yolov5", "yolov8"):
        assert name in info.value.message


def test_plugin_decoder_and_its_options_are_accepted():
    registry = DecoderRegistry()
    registry.register("test-manifest-decoder", decode_yolov8, options=("anchors",))
    data = with_change("decoder", {"type": "test-manifest-decoder", "anchors": [1, 2]})
    assert ModelManifest.from_dict(data, decoders=registry).decoder.options == {"anchors": [1, 2]}
    with pytest.raises(ModelPackageError, match="did you mean 'anchors'"):
        ModelManifest.from_dict(with_change("decoder.anchor", 3, data), decoders=registry)
    with pytest.raises(ModelPackageError, match="unknown decoder 'test-manifest-decoder'"):
        ModelManifest.from_dict(data)


def test_not_an_object():
    with pytest.raises(ModelPackageError, match="expected a JSON object"):
        ModelManifest.from_dict([1, 2])


def test_invalid_json_names_the_file_and_position(tmp_path):
    path = tmp_path / "model.json"
    path.write_text('{"name": "x",\n  oops}')
    with pytest.raises(ModelPackageError) as info:
        ModelManifest.load(path)
    assert info.value.path == path
    assert "invalid JSON at line 2" in info.value.message


def test_missing_file(tmp_path):
    with pytest.raises(ModelPackageError, match="file not found"):
        ModelManifest.load(tmp_path / "model.json")


def test_error_survives_pickling():
    error = ModelPackageError("bad", path="a/model.json", field="input.size")
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.path, clone.field, clone.message, str(clone)) == (
        error.path,
        error.field,
        error.message,
        str(error),
    )
