"""What the sinks, ``coral run`` and the preview read from one ``inference`` result: its boxes,
its detection count and its frame's capture time (in the serialised shape of a model response,
or a workflow's ``{"predictions": {"image": ..., "predictions": [...]}}`` output)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def frame_timestamp_utc(frame: Any) -> datetime:
    """The frame's capture time as an aware UTC datetime (``inference`` uses naive local)."""
    stamp: datetime | None = getattr(frame, "frame_timestamp", None)
    if stamp is None:
        return datetime.now(timezone.utc)
    return stamp.astimezone(timezone.utc)


class PredictionBoxes:
    """Boxes of one ``inference`` object-detection result as arrays (x1, y1, x2, y2 pixels),
    in the shape the recorder's annotator reads."""

    __slots__ = ("xyxy", "confidence", "class_id", "class_name")

    def __init__(self, predictions: dict[str, Any] | None) -> None:
        import numpy as np

        boxes = [r for r in _rows(predictions) if isinstance(r, dict) and "x" in r and "width" in r]
        centres = np.array([[b["x"], b["y"], b["width"], b["height"]] for b in boxes], np.float32)
        centres = centres.reshape(-1, 4)
        half = centres[:, 2:] / 2
        self.xyxy = np.concatenate([centres[:, :2] - half, centres[:, :2] + half], axis=1)
        self.confidence = np.array([b.get("confidence", 0.0) for b in boxes], np.float32)
        self.class_id = np.array([b.get("class_id", -1) for b in boxes], np.int64)
        self.class_name = [b.get("class", "") for b in boxes]

    def __len__(self) -> int:
        return len(self.confidence)


def _rows(predictions: dict[str, Any] | None) -> list[Any]:
    """The detection rows of a model result, or of a workflow result whose serialised
    ``predictions`` output is itself ``{"image": ..., "predictions": [...]}``."""
    rows = (predictions or {}).get("predictions") if isinstance(predictions, dict) else None
    if isinstance(rows, dict):
        rows = rows.get("predictions")
    return rows if isinstance(rows, list) else []


def detection_count(predictions: dict[str, Any] | None) -> int:
    """How many detections the result holds."""
    return len(_rows(predictions))


def model_time_ms(predictions: dict[str, Any] | None) -> float | None:
    """The model's time for the frame in ms (pre-processing, forward pass, decoding: the
    ``time`` inference puts in a model's result), None when the result carries none."""
    seconds = predictions.get("time") if isinstance(predictions, dict) else None
    return seconds * 1000 if isinstance(seconds, float) else None
