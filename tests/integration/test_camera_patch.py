"""The ``camera`` patch on inference's real ``VideoSource``.

This machine has no camera, so opening one fails, which is fine: a thin subclass of the patched
producer records the ``cv2.VideoCapture`` arguments (the one seam), proving which backend was
asked for. A real video file still opens through inference's original path and yields frames.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from face_video import write_plain_video

pytest.importorskip("inference")

import cv2  # noqa: E402

import coral_inference  # noqa: E402
from coral_inference.patches.camera import PRODUCER, VIDEO_SOURCE, camera_reference  # noqa: E402
from coral_inference.runtime import compat  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def runtime_config(platform: str) -> dict[str, Any]:
    return {"platform": platform, "plugins": {"only": ["camera"]}}


@pytest.fixture
def video_source() -> Any:
    return compat.import_object(VIDEO_SOURCE)


@pytest.fixture
def runtime(video_source: Any) -> Iterator[Any]:
    coral_inference.shutdown()
    original = video_source.CV2VideoFrameProducer
    context = coral_inference.init(runtime_config("cpu"))
    assert context.patches["camera"].status == "applied", context.patches["camera"].reason
    yield context
    coral_inference.shutdown()
    assert video_source.CV2VideoFrameProducer is original


@contextlib.contextmanager
def recording_captures(video_source: Any) -> Iterator[list[tuple[Any, int]]]:
    """Put a subclass of the patched producer in its place that records every V4L2 open."""
    patched = video_source.CV2VideoFrameProducer
    calls: list[tuple[Any, int]] = []

    class Recording(patched):  # type: ignore[misc, valid-type]
        @staticmethod
        def _capture(reference: Any, api_preference: int) -> Any:
            calls.append((reference, api_preference))
            return patched._capture(reference, api_preference)

    video_source.CV2VideoFrameProducer = Recording
    try:
        yield calls
    finally:
        video_source.CV2VideoFrameProducer = patched


@pytest.mark.parametrize(
    ("video", "reference"),
    [
        (0, 0),
        (2, 2),
        ("0", 0),
        (" 1 ", 1),
        ("/dev/video0", "/dev/video0"),
        ("/tmp/clip.mp4", None),
        ("rtsp://127.0.0.1/stream", None),
        (True, None),
    ],
)
def test_camera_references(video: Any, reference: Any) -> None:
    assert camera_reference(video) == reference


def test_applies_once_and_reverts_identity_equal(video_source: Any) -> None:
    coral_inference.shutdown()
    original = compat.import_object(PRODUCER)

    context = coral_inference.init(runtime_config("cpu"))
    assert context.patches["camera"].status == "applied"
    patched = video_source.CV2VideoFrameProducer
    assert patched is not original and issubclass(patched, original)

    again = coral_inference.init(runtime_config("cpu"))
    assert again.patches["camera"].reason.startswith("already applied")
    assert video_source.CV2VideoFrameProducer is patched
    assert patched.__mro__[1] is original  # one layer, not two

    coral_inference.shutdown()
    assert video_source.CV2VideoFrameProducer is original


def test_rknn_applies_and_jetson_skips_with_a_reason(video_source: Any) -> None:
    coral_inference.shutdown()
    original = video_source.CV2VideoFrameProducer
    try:
        rknn = coral_inference.init(runtime_config("rknn"))
        assert rknn.patches["camera"].status == "applied"
        assert video_source.CV2VideoFrameProducer is not original

        jetson = coral_inference.init(runtime_config("jetson"))
        record = jetson.patches["camera"]
        assert record.status == "skipped"
        assert "jetson" in record.reason and "V4L2" in record.reason
        assert video_source.CV2VideoFrameProducer is original  # the rknn patch was reverted
    finally:
        coral_inference.shutdown()
    assert video_source.CV2VideoFrameProducer is original


@pytest.mark.parametrize(("video", "reference"), [(0, 0), ("0", 0), ("/dev/video0", "/dev/video0")])
def test_video_source_opens_cameras_with_v4l2(runtime, video_source: Any, video, reference) -> None:
    from inference.core.interfaces.camera.exceptions import SourceConnectionError

    with recording_captures(video_source) as calls:
        source = video_source.VideoSource.init(video_reference=video)
        with pytest.raises(SourceConnectionError):
            source.start()  # no camera here: the open fails
    assert calls == [(reference, cv2.CAP_V4L2)]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_plain_video(tmp_path / "clip.avi", frames=10, fps=10, step=20)


def test_video_file_opens_through_the_original_path(runtime, video_source: Any, video) -> None:
    producer = video_source.CV2VideoFrameProducer(str(video))
    assert producer.stream.isOpened()
    assert producer.stream.getBackendName() != "V4L2"
    producer.release()

    with recording_captures(video_source) as calls:
        source = video_source.VideoSource.init(video_reference=str(video))
        source.start()
        frames = [source.read_frame() for _ in range(3)]
        source.terminate(wait_on_frames_consumption=False, purge_frames_buffer=True)
    assert calls == []
    assert [frame.image.shape for frame in frames] == [(120, 160, 3)] * 3
    assert [frame.frame_id for frame in frames] == [1, 2, 3]
