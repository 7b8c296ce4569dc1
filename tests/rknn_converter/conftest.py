"""The converter tests run in rknn-toolkit2's own environment (tox env ``rknn``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

pytest.importorskip("onnx", reason="the converter tests need onnx (tox -e rknn)")


@pytest.fixture(scope="session")
def toolkit():
    return pytest.importorskip("rknn.api", reason="needs rknn-toolkit2: tox -e rknn")


@pytest.fixture(scope="session")
def face_images(tmp_path_factory):
    """Calibration and verification frames from the sample video (faces at 640x480)."""
    import cv2

    from coral_inference.models.sample import generate_sample_video

    root = tmp_path_factory.mktemp("faces")
    generate_sample_video(root / "v.mp4", frames=60, size=(640, 480))
    capture = cv2.VideoCapture(str(root / "v.mp4"))
    calib, verify = root / "calib", root / "verify"
    calib.mkdir()
    verify.mkdir()
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % 3 == 0:
            cv2.imwrite(str(calib / f"{index:03d}.png"), frame)
        if index % 6 == 1:
            cv2.imwrite(str(verify / f"{index:03d}.png"), frame)
        index += 1
    capture.release()
    return calib, verify


@pytest.fixture(scope="session")
def sample_package(tmp_path_factory):
    from coral_inference.models.sample import build_sample_package

    return build_sample_package(tmp_path_factory.mktemp("pkg") / "centerface")
