"""Fixtures for the OpenVINO backend tests: real OpenVINO on this CPU, real onnxruntime as the
reference, the sample CenterFace package and a YOLOv8-shaped graph built here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

#: What these tests need, with the install hint. Modules, not names: the source folder
#: coral_inference_openvino/ (and any folder named openvino on sys.path) imports as a namespace.
NEEDED = (
    ("coral_inference_openvino.backend", "pip install ./coral_inference_openvino"),
    ("openvino", "pip install openvino"),
    ("onnxruntime", "the reference backend: pip install onnxruntime"),
)


def _missing() -> str | None:
    for module, hint in NEEDED:
        try:
            spec = importlib.util.find_spec(module)
        except ImportError:
            spec = None
        if spec is None or spec.origin in (None, "namespace"):
            return f"{module} missing ({hint})"
    return None


MISSING = _missing()
if MISSING:  # a skip raised here would stop the whole session, so the files are not collected
    collect_ignore_glob = ["test_*.py"]


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
