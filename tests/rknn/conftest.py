"""Fixtures for the RKNN backend tests: a simulated board, its NPU and RKNN packages."""

from __future__ import annotations

import pytest

# the module, not the name: the source folder coral_inference_rknn/ imports as a namespace
pytest.importorskip("coral_inference_rknn.backend", reason="pip install ./coral_inference_rknn")


@pytest.fixture(scope="session")
def onnx_sample(tmp_path_factory):
    from coral_inference.models.sample import build_sample_package

    return build_sample_package(tmp_path_factory.mktemp("onnx") / "centerface")


@pytest.fixture(scope="session")
def rknn_sample(onnx_sample, tmp_path_factory):
    """The sample CenterFace as an RKNN package for rk3588 (placeholder .rknn + ONNX twin)."""
    from coral_inference_rknn.testing.standin import build_standin_package

    return build_standin_package(onnx_sample, tmp_path_factory.mktemp("rknn") / "centerface")
