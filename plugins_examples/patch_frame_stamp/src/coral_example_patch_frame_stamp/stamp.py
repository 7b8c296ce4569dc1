"""Drawing the capture time onto rendered frames, and the ``render_boxes`` wrapper."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from datetime import timezone
from typing import Any

import cv2
import numpy as np

#: The ``render_boxes`` parameters the wrapper relies on.
PARAMETERS = ("video_frame", "on_frame_rendered")
FONT = cv2.FONT_HERSHEY_SIMPLEX
MARGIN = 8


def stamp_text(frame: Any) -> str:
    """The stamp of a ``VideoFrame``: its ``frame_timestamp`` in UTC, to the millisecond (a
    naive timestamp, as ``inference`` takes them, is read as local time)."""
    when = frame.frame_timestamp.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def stamp_image(image: np.ndarray, frame: Any) -> np.ndarray:
    """A copy of ``image`` with ``frame``'s capture time in its bottom-left corner, white on a
    black outline; ``image`` itself unchanged when there is no frame or it is not an array."""
    if frame is None or not isinstance(image, np.ndarray):
        return image
    scale = max(0.4, image.shape[0] / 1000)
    thickness = max(1, round(scale * 2))
    origin = (MARGIN, image.shape[0] - MARGIN)
    text = stamp_text(frame)
    stamped = image.copy()
    cv2.putText(stamped, text, origin, FONT, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(stamped, text, origin, FONT, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return stamped


def stamping(render_boxes: Callable[..., None], active: threading.Event) -> Callable[..., None]:
    """``render_boxes`` with its ``on_frame_rendered`` callback handed stamped images while
    ``active`` is set (plain ``render_boxes`` otherwise, for references kept after a revert).

    Raises TypeError when ``render_boxes`` lacks a parameter the wrapper needs, so the patch
    is rolled back instead of breaking the sink.
    """
    signature = inspect.signature(render_boxes)
    missing = [name for name in PARAMETERS if name not in signature.parameters]
    if missing:
        raise TypeError(f"render_boxes has no parameter {', '.join(missing)}")

    @functools.wraps(render_boxes)
    def stamped_render_boxes(*args: Any, **kwargs: Any) -> None:
        if not active.is_set():
            return render_boxes(*args, **kwargs)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        deliver = bound.arguments["on_frame_rendered"]
        frames = bound.arguments["video_frame"]
        bound.arguments["on_frame_rendered"] = functools.partial(_deliver, deliver, frames)
        render_boxes(*bound.args, **bound.kwargs)

    return stamped_render_boxes


def _deliver(deliver: Callable[[Any], None], frames: Any, rendered: Any) -> None:
    """Stamp what ``render_boxes`` rendered, then pass it on: ``(source_id, image)`` for one
    frame, or ``[(position, image), ...]`` for a batch, positions indexing ``frames``."""
    if isinstance(rendered, list):
        deliver([(index, stamp_image(image, frames[index])) for index, image in rendered])
    else:
        source_id, image = rendered
        deliver((source_id, stamp_image(image, frames)))
