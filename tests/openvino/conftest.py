"""Fixtures for the OpenVINO backend tests: real OpenVINO on this CPU, real onnxruntime as the
reference, the sample CenterFace package and a YOLOv8-shaped graph built here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the module, not the name: the source folder coral_inference_openvino/ imports as a namespace
pytest.importorskip(
    "coral_inference_openvino.backend", reason="pip install ./coral_inference_openvino"
)
pytest.importorskip("openvino", reason="pip install openvino")
pytest.importorskip("onnxruntime", reason="the reference backend: pip install onnxruntime")

# the YOLOv8-shaped ONNX graph the converter tests build (no weights downloaded)
sys.path.insert(0, str(Path(__file__).parents[1] / "rknn_converter"))


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    """The sample CenterFace package (dynamic input, ONNX weights)."""
    from coral_inference.models.sample import build_sample_package

    return build_sample_package(tmp_path_factory.mktemp("ov") / "centerface")


@pytest.fixture(scope="session")
def face_frames(tmp_path_factory):
    """20 BGR frames of the sample video (640x360: faces of several sizes, some empty)."""
    import cv2

    from coral_inference.models.sample import generate_sample_video

    video = tmp_path_factory.mktemp("ov-video") / "faces.mp4"
    generate_sample_video(video, frames=20)
    capture = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 20
    return frames
