"""The OpenVINO backend with real OpenVINO on this CPU, against onnxruntime as the reference."""

from __future__ import annotations

import numpy as np
import pytest
from matching import matched_ious

from coral_inference.models.errors import ModelPackageError
from coral_inference.models.runner import ModelRunner
from coral_inference.runtime.backends import BackendError
from coral_inference.runtime.config import ConfigError
from coral_inference_onnx.backend import OnnxBackend
from coral_inference_openvino.backend import OpenVinoBackend
from coral_inference_openvino.options import resolve


def boxes(detections) -> list[list[list[float]]]:
    return [d.xyxy.tolist() for d in detections]


def test_options_defaults_validation_and_compile_properties(tmp_path):
    settings = resolve({})
    assert settings.device == "AUTO" and settings.compile_config() == {
        "PERFORMANCE_HINT": "LATENCY",
        "DEVICE_PROPERTIES": {"CPU": {"INFERENCE_PRECISION_HINT": "f32"}},
    }
    assert resolve({"device": "CPU"}).compile_config()["INFERENCE_PRECISION_HINT"] == "f32"
    assert "INFERENCE_PRECISION_HINT" not in resolve({"device": "GPU"}).compile_config()
    full = resolve(
        {
            "device": "cpu",
            "performance_hint": "THROUGHPUT",
            "num_requests": 3,
            "cache_dir": str(tmp_path / "c"),
            "precision_hint": "f32",
            "inference_num_threads": 2,
        }
    )
    assert full.device == "CPU"
    assert full.compile_config() == {
        "PERFORMANCE_HINT": "THROUGHPUT",
        "PERFORMANCE_HINT_NUM_REQUESTS": "3",
        "CACHE_DIR": str(tmp_path / "c"),
        "INFERENCE_PRECISION_HINT": "f32",
        "INFERENCE_NUM_THREADS": "2",
    }
    with pytest.raises(ConfigError, match=r"backends.options.openvino.performance_hint"):
        resolve({"performance_hint": "FAST"})
    with pytest.raises(ConfigError, match=r"backends.options.openvino.num_request: unknown key"):
        resolve({"num_request": 2})
    with pytest.raises(ConfigError, match="inference_num_threads: must be >= 0"):
        resolve({"inference_num_threads": -1})


def test_sample_model_gives_the_onnx_backends_detections(sample, face_frames):
    openvino = OpenVinoBackend().create_session(sample, {"device": "CPU"})
    assert openvino.devices == ["CPU"] and openvino.weights.endswith("model.onnx")
    with (
        ModelRunner(sample, openvino) as ours,
        ModelRunner(sample, OnnxBackend().create_session(sample, {})) as reference,
    ):
        expected = [reference.predict(frame) for frame in face_frames]
        got = [ours.predict(frame) for frame in face_frames]
    assert sum(len(d) for d in expected) >= 10  # the video has faces in most frames
    ious = matched_ious(boxes(expected), boxes(got))
    assert np.mean(ious) >= 0.99, ious
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_allclose(np.sort(want.confidence), np.sort(have.confidence), atol=0.01)


def test_yolov8_style_graph_gives_the_onnx_backends_detections(tmp_path):
    import cv2
    from yolo_graph import build_yolov8_package, square_images

    package = build_yolov8_package(tmp_path / "pkg")
    images = [cv2.imread(str(p)) for p in sorted(square_images(tmp_path / "img", 8, 3).iterdir())]
    with (
        ModelRunner(package, OpenVinoBackend().create_session(package, {})) as ours,
        ModelRunner(package, OnnxBackend().create_session(package, {})) as reference,
    ):
        expected = reference.predict_batch(images)
        got = ours.predict_batch(images)
    assert sum(len(d) for d in expected) >= 8
    ious = matched_ious(boxes(expected), boxes(got))
    assert np.mean(ious) >= 0.99, ious
    for want, have in zip(expected, got, strict=True):
        assert sorted(want.class_id.tolist()) == sorted(have.class_id.tolist())


def test_requests_in_flight_give_the_same_detections_as_one(sample, face_frames):
    backend = OpenVinoBackend()
    pooled = backend.create_session(sample, {"num_requests": 3, "performance_hint": "THROUGHPUT"})
    assert pooled.max_in_flight == 3
    with (
        ModelRunner(sample, pooled) as many,
        ModelRunner(sample, backend.create_session(sample, {"num_requests": 1})) as one,
    ):
        got = many.predict_batch(face_frames[:9])
        expected = [one.predict(frame) for frame in face_frames[:9]]
    assert np.mean(matched_ious(boxes(expected), boxes(got))) >= 0.999


def write_ir_package(sample, directory, *, keep_onnx: bool):
    """The sample package with OpenVINO IR weights made here from its ONNX."""
    import openvino as ov

    from coral_inference.models.manifest import ModelManifest
    from coral_inference.models.package import load_package, write_package

    directory.mkdir(parents=True)
    ov.save_model(ov.convert_model(str(sample.weights_path("onnx"))), str(directory / "ir.xml"))
    data = sample.manifest.to_dict()
    data["weights"] = {"openvino": "model.xml"}
    weights = {"openvino": directory / "ir.xml"}
    if keep_onnx:
        data["weights"]["onnx"] = "model.onnx"
        weights["onnx"] = sample.weights_path("onnx")
    write_package(directory / "pkg", ModelManifest.from_dict(data), weights)
    return load_package(directory / "pkg")


def test_ir_weights_load_and_are_preferred_to_onnx(sample, face_frames, tmp_path):
    package = write_ir_package(sample, tmp_path / "ir", keep_onnx=True)
    assert (package.root / "model.bin").is_file()  # copied beside model.xml
    session = OpenVinoBackend().create_session(package, {})
    assert session.weights.endswith("model.xml")
    with (
        ModelRunner(package, session) as ours,
        ModelRunner(sample, OnnxBackend().create_session(sample, {})) as reference,
    ):
        ious = matched_ious(
            boxes(reference.predict(f) for f in face_frames),
            boxes(ours.predict(f) for f in face_frames),
        )
    assert np.mean(ious) >= 0.99

    only_ir = write_ir_package(sample, tmp_path / "ir-only", keep_onnx=False)
    assert only_ir.formats == ("openvino",)
    (only_ir.root / "model.bin").unlink()
    with pytest.raises(ModelPackageError, match=r"'model.xml' needs 'model.bin' beside it"):
        only_ir.weights_path("openvino")


def test_ir_package_is_refused_by_onnx_and_picked_by_auto(sample, tmp_path):
    from coral_inference.runtime.backends import choose_backend

    package = write_ir_package(sample, tmp_path / "ir", keep_onnx=False)
    backends = {"onnx": OnnxBackend(), "openvino": OpenVinoBackend()}
    adapter, _ = choose_backend(backends, ["onnx"], weight_formats=package.formats)
    assert adapter.name == "openvino"  # onnx loads no IR: the other available one
    with pytest.raises(BackendError, match="loads onnx weights but the model package has openvino"):
        choose_backend(backends, ["auto"], weight_formats=package.formats, requested="onnx")


def test_cache_dir_fills_and_the_second_start_loads_from_it(sample, tmp_path):
    cache = tmp_path / "cache"
    options = {"cache_dir": str(cache)}
    first = OpenVinoBackend().create_session(sample, options)
    assert not first.loaded_from_cache
    assert [p for p in cache.rglob("*") if p.is_file()], "no compiled model was cached"
    second = OpenVinoBackend().create_session(sample, options)  # a new Core, as a new process
    assert second.loaded_from_cache
    # loading a cached blob skips the compilation: generous margin, the machine may be busy
    assert second.compile_seconds <= 2 * first.compile_seconds + 0.5, (
        first.compile_seconds,
        second.compile_seconds,
    )
    x = np.zeros((1, 3, 64, 96), np.float32)
    for want, have in zip(first.run(x), second.run(x), strict=True):
        np.testing.assert_allclose(want, have, atol=1e-4)


def test_a_device_that_is_not_there_is_one_clear_error(sample):
    import openvino as ov

    seen = ov.Core().available_devices
    if "NPU" in seen:
        pytest.skip("this machine has an NPU")
    with pytest.raises(BackendError) as exc:
        OpenVinoBackend().create_session(sample, {"device": "NPU"})
    message = str(exc.value)
    assert message.startswith("backends.options.openvino.device: NPU not available here")
    assert all(name in message for name in seen), message
    assert "Set device to AUTO" in message and "\n" not in message


def test_corrupt_weights_are_one_clear_error(sample, tmp_path):
    from coral_inference.models.package import load_package, write_package

    package = write_package(tmp_path / "pkg", sample.manifest, sample.weights_path("onnx"))
    package.weights_path("onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(BackendError, match="OpenVINO .* cannot compile this model") as exc:
        OpenVinoBackend().create_session(load_package(tmp_path / "pkg"), {})
    assert "Exception from" not in str(exc.value)


def test_doctor_section_names_version_and_devices():
    import openvino as ov

    info = OpenVinoBackend().diagnostics()
    assert info["openvino"] == ov.get_version().split("-")[0]
    core = ov.Core()
    for name in core.available_devices:
        assert info[f"device {name}"] == core.get_property(name, "FULL_DEVICE_NAME")


def test_registering_and_probing_availability_do_not_import_openvino(python_code):
    result = python_code(
        "import sys\n"
        "from coral_inference_openvino import plugin\n"
        "from coral_inference_openvino.backend import OpenVinoBackend\n"
        "found = []\n"
        "plugin.register_backend(found.append)\n"
        "plugin.declare_options(lambda path, section: found.append(path))\n"
        "assert OpenVinoBackend().availability().available\n"
        "print(found[1], 'openvino' in sys.modules)\n"
    )
    assert result.stdout.split() == ["backends.options.openvino", "False"]
