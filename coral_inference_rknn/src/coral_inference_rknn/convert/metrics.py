"""Agreement between two runs of one model: per-output cosine and matched detections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from coral_inference.models.detections import Detections
from coral_inference.models.nms import box_iou

MATCH_IOU = 0.5


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two tensors (1.0 for two all-zero tensors)."""
    x = np.asarray(a, np.float64).ravel()
    y = np.asarray(b, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"outputs differ in size: {np.shape(a)} vs {np.shape(b)}")
    norm = np.linalg.norm(x) * np.linalg.norm(y)
    if norm == 0:
        return 1.0 if not x.any() and not y.any() else 0.0
    return float(x @ y / norm)


def match_detections(
    reference: Detections, candidate: Detections, threshold: float = MATCH_IOU
) -> list[float]:
    """IoUs of reference boxes matched one-to-one to candidate boxes of the same class at
    ``IoU >= threshold``, most confident reference boxes first."""
    if not len(reference) or not len(candidate):
        return []
    ious = box_iou(reference.xyxy, candidate.xyxy)
    ious[reference.class_id[:, None] != candidate.class_id[None, :]] = 0
    taken = np.zeros(len(candidate), bool)
    matched = []
    for row in np.argsort(-reference.confidence):
        scores = np.where(taken, -1.0, ious[row])
        best = int(scores.argmax())
        if scores[best] >= threshold:
            taken[best] = True
            matched.append(float(scores[best]))
    return matched


@dataclass
class Agreement:
    """Accumulates agreement over images."""

    cosines: list[list[float]] = field(default_factory=list)
    reference_boxes: int = 0
    candidate_boxes: int = 0
    matched_ious: list[float] = field(default_factory=list)
    images: int = 0

    def add(
        self,
        reference_outputs: Sequence[np.ndarray],
        candidate_outputs: Sequence[np.ndarray],
        reference: Detections,
        candidate: Detections,
    ) -> None:
        if len(reference_outputs) != len(candidate_outputs):
            raise ValueError(
                f"{len(reference_outputs)} reference outputs vs {len(candidate_outputs)}"
            )
        if not self.cosines:
            self.cosines = [[] for _ in reference_outputs]
        for scores, a, b in zip(self.cosines, reference_outputs, candidate_outputs, strict=True):
            scores.append(cosine(a, b))
        self.reference_boxes += len(reference)
        self.candidate_boxes += len(candidate)
        self.matched_ious += match_detections(reference, candidate)
        self.images += 1

    def summary(self) -> dict:
        matched = len(self.matched_ious)
        return {
            "images": self.images,
            "cosine": [
                {"output": i, "min": round(min(c), 6), "mean": round(float(np.mean(c)), 6)}
                for i, c in enumerate(self.cosines)
            ],
            "detections": {
                "reference": self.reference_boxes,
                "converted": self.candidate_boxes,
                "matched": matched,
                "recall": round(matched / self.reference_boxes, 4) if self.reference_boxes else 1.0,
                "mean_iou": round(float(np.mean(self.matched_ious)), 4) if matched else None,
            },
        }
