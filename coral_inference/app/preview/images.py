"""The images a preview viewer receives: a frame with its boxes drawn, or a placeholder."""

from __future__ import annotations

import cv2
import numpy as np

from coral_inference.app.preview.source import PreviewFrame
from coral_inference.services.annotation import draw_detections
from coral_inference.services.predictions import PredictionBoxes

#: Width and height of the placeholder shown before a pipeline's first frame.
PLACEHOLDER_SIZE = (640, 360)


def annotate(frame: PreviewFrame) -> np.ndarray:
    """The frame as BGR with its detections drawn (on a copy: the source's image is kept)."""
    image = frame.image
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return draw_detections(image, PredictionBoxes(frame.predictions))


def placeholder(text: str) -> np.ndarray:
    """A dark 640x360 BGR frame saying ``text``, shown before the pipeline's first frame."""
    width, height = PLACEHOLDER_SIZE
    image = np.full((height, width, 3), 24, np.uint8)
    cv2.putText(
        image,
        text,
        (24, height // 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.6,
        (160, 160, 160),
        1,
        cv2.LINE_AA,
    )
    return image
