"""The detection result type shared by decoders, the runner and its callers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Detections"]


@dataclass(frozen=True)
class Detections:
    """Boxes found in one image.

    Attributes:
        xyxy: ``(N, 4)`` float32 corners ``x1, y1, x2, y2`` in pixels (model-input pixels straight
            out of a decoder, source-frame pixels out of :class:`~.runner.ModelRunner`).
        confidence: ``(N,)`` float32 scores in ``[0, 1]``.
        class_id: ``(N,)`` int64 indices into the manifest's ``classes``.

    Rows are sorted by decreasing confidence.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if (
            self.xyxy.shape != (n, 4)
            or self.confidence.shape != (n,)
            or self.class_id.shape != (n,)
        ):
            raise ValueError(
                "Detections needs xyxy (N, 4), confidence (N,) and class_id (N,), got "
                f"{self.xyxy.shape}, {self.confidence.shape}, {self.class_id.shape}"
            )

    @classmethod
    def empty(cls) -> Detections:
        """No detections."""
        return cls(
            xyxy=np.zeros((0, 4), np.float32),
            confidence=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int64),
        )

    def __len__(self) -> int:
        return len(self.confidence)

    def select(self, index: np.ndarray) -> Detections:
        """The detections at ``index`` (an integer index array or a boolean mask)."""
        return Detections(self.xyxy[index], self.confidence[index], self.class_id[index])
