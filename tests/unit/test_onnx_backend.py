"""The ONNX Runtime backend's option handling and provider selection, with real onnxruntime."""

import pytest

from coral_inference.runtime.backends import BackendError
from coral_inference.runtime.config import ConfigError

backend = pytest.importorskip("coral_inference_onnx.backend")
ort = pytest.importorskip("onnxruntime")


def test_defaults_and_validation():
    assert backend.resolve_options({})["providers"] == ["CPUExecutionProvider"]
    assert backend.resolve_options({"providers": "auto"})["providers"] == ["auto"]
    with pytest.raises(ConfigError, match=r"backends.options.onnx.thread: unknown key 'thread'"):
        backend.resolve_options({"thread": 2})
    with pytest.raises(ConfigError, match="intra_op_threads: must be >= 0"):
        backend.resolve_options({"intra_op_threads": -1})
    with pytest.raises(ConfigError, match="optimization: expected one of"):
        backend.resolve_options({"optimization": "max"})


def test_missing_provider_is_named_with_what_to_install():
    available = ort.get_available_providers()
    with pytest.raises(BackendError) as exc:
        backend.select_providers(["CUDAExecutionProvider"], ["CPUExecutionProvider"])
    assert "CUDAExecutionProvider not offered" in str(exc.value)
    assert "onnxruntime-gpu" in str(exc.value)
    assert backend.select_providers(["auto"], available)[-1] == "CPUExecutionProvider"
    assert backend.select_providers(
        ["auto"], ["CUDAExecutionProvider", "CPUExecutionProvider"]
    ) == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_session_runs_the_sample_model_with_thread_settings(tmp_path):
    import numpy as np

    from coral_inference.models.sample import build_sample_package

    package = build_sample_package(tmp_path / "pkg")
    adapter = backend.OnnxBackend()
    assert adapter.availability().available
    session = adapter.create_session(package, {"intra_op_threads": 1, "optimization": "basic"})
    outputs = session.run(np.zeros((1, 3, 64, 96), np.float32))
    assert len(outputs) == 4 and outputs[0].shape[2:] == (16, 24)
    assert session.providers == ["CPUExecutionProvider"]


def test_corrupt_weights_are_one_clear_error(tmp_path):
    from coral_inference.models.sample import build_sample_package

    package = build_sample_package(tmp_path / "pkg")
    package.weights_path("onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(BackendError, match="onnxruntime cannot load this model"):
        backend.OnnxBackend().create_session(package, {})
