"""Compare two backends' detections frame by frame: same counts, boxes matched by IoU."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_ious(
    expected: Sequence[Sequence[Sequence[float]]], got: Sequence[Sequence[Sequence[float]]]
) -> list[float]:
    """Per frame, each expected box greedily matched to the best remaining box of ``got``;
    asserts both have the same number of frames and the same count in every frame."""
    assert len(expected) == len(got), (len(expected), len(got))
    ious = []
    for index, (want, have) in enumerate(zip(expected, got, strict=True)):
        assert len(want) == len(have), f"frame {index}: {len(want)} vs {len(have)} boxes"
        left = list(have)
        for box in want:
            scores = [box_iou(box, other) for other in left]
            best = int(np.argmax(scores))
            ious.append(scores[best])
            left.pop(best)
    return ious
