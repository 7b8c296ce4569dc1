"""Patch ``camera``: open local cameras through V4L2 with YUYV frames on ``cpu`` and ``rknn``.

``inference``'s ``VideoSource`` builds its frame producer from the module global
``CV2VideoFrameProducer`` of ``inference.core.interfaces.camera.video_source`` (from
``inference`` 1.x on, the same module object as ``streamvision.camera.video_source``). Upstream
opens a camera with ``cv2.CAP_V4L2`` only on Jetson; elsewhere OpenCV picks a backend itself
(often GStreamer or FFmpeg, which mis-handle many USB cameras on ARM boards) and the string
``"0"`` is opened as a file name. The patch puts a subclass in that global which opens camera
indices, digit strings and ``/dev/video*`` paths with ``cv2.CAP_V4L2`` and asks for YUYV frames;
files and URLs go through the original class unchanged. On ``jetson`` the patch is skipped, so
``inference``'s own Jetson path stays in charge.
"""

from __future__ import annotations

import logging
from typing import Any

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord

log = logging.getLogger(__name__)

VIDEO_SOURCE = "inference.core.interfaces.camera.video_source"
PRODUCER = f"{VIDEO_SOURCE}:CV2VideoFrameProducer"
PLATFORMS = ("cpu", "rknn")
DEVICE_PREFIX = "/dev/video"
FOURCC = "YUYV"


def camera_reference(video: Any) -> int | str | None:
    """The V4L2 reference of ``video``: an ``int`` index (``"0"`` becomes ``0``) or a
    ``/dev/video*`` path; None for anything else (files, URLs)."""
    if isinstance(video, bool):
        return None
    if isinstance(video, int):
        return video
    if isinstance(video, str):
        if video.strip().isdigit():
            return int(video)
        if video.startswith(DEVICE_PREFIX):
            return video
    return None


def v4l2_producer_class(base: type) -> type:
    """A subclass of ``inference``'s ``CV2VideoFrameProducer`` that opens cameras via V4L2."""
    import cv2

    class V4L2VideoFrameProducer(base):  # type: ignore[misc, valid-type]
        """Cameras through ``cv2.CAP_V4L2`` with YUYV requested; everything else via ``base``."""

        api_preference: int = cv2.CAP_V4L2

        def __init__(self, video: int | str) -> None:
            reference = camera_reference(video)
            if reference is None:
                super().__init__(video)
                return
            self._source_ref = reference
            self.stream = self._capture(reference, self.api_preference)
            opened = self.stream.isOpened()
            # what inference 1.x's ``connection_error_message()`` reports when the open failed
            self._connection_error_message = (
                "" if opened else f"cannot open camera {reference!r} with V4L2"
            )
            if opened and not self.stream.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*FOURCC)):
                log.warning("camera %r did not accept FOURCC %s", reference, FOURCC)

        @staticmethod
        def _capture(reference: int | str, api_preference: int) -> Any:
            """Open the capture (the one call into OpenCV)."""
            return cv2.VideoCapture(reference, api_preference)

    V4L2VideoFrameProducer.__module__ = __name__
    return V4L2VideoFrameProducer


class CameraPatch(Patch):
    name = "camera"
    description = "open camera indices, '0' and /dev/video* with V4L2 and YUYV on cpu/rknn"
    inference = TESTED_INFERENCE
    targets = (VIDEO_SOURCE, PRODUCER)

    def not_needed(self, context: PatchContext) -> str | None:
        if context.platform in PLATFORMS:
            return None
        return f"platform {context.platform}: inference opens cameras itself (V4L2 on Jetson)"

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        producer = v4l2_producer_class(targets[PRODUCER])
        patcher.replace(targets[VIDEO_SOURCE], "CV2VideoFrameProducer", producer)


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(CameraPatch())
