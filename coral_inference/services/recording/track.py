"""The detections track of a recorded segment: ``SEGMENT.jsonl`` beside ``SEGMENT.mp4``.

One JSON object per line, one line per frame the segment holds:

* ``t``: the frame's presentation time in seconds from the segment's start, as the video
  holds it (a player's ``currentTime``);
* ``time``: its capture time, UTC ISO 8601; ``frame_id``: inference's frame id (or null);
* ``detections``: ``[{"xyxy": [x1, y1, x2, y2], "confidence", "class_id", "class"}]`` in the
  source frame's pixels (the video's).

The track is written beside the ``.partial.mp4`` as ``.partial.jsonl`` one line at a time (a
crash loses at most the line being written; :func:`read_track` skips a torn last line) and is
renamed, recovered, moved aside and deleted together with its segment.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotation imports OpenCV; reading and naming tracks does not need it
    from coral_inference.services.annotation import DetectionsLike

SUFFIX = ".jsonl"


def track_path(video: Path) -> Path:
    """The track beside a segment file (closed, partial or damaged: the name's last suffix
    changes, so ``X.partial.mp4`` has ``X.partial.jsonl``)."""
    return video.with_suffix(SUFFIX)


def detection_rows(detections: DetectionsLike | None) -> list[dict[str, Any]]:
    """The detections as the track's JSON rows (finite numbers, plain Python types)."""
    if detections is None:
        return []
    from coral_inference.services.annotation import detection_columns

    boxes, class_ids, confidences, names = detection_columns(detections)
    return [
        {
            "xyxy": [round(float(v), 1) if math.isfinite(v) else None for v in box],
            "confidence": None if confidence is None else round(float(confidence), 4),
            "class_id": None if class_id is None else int(class_id),
            "class": None if name is None else str(name),
        }
        for box, class_id, confidence, name in zip(
            boxes.tolist(), class_ids, confidences, names, strict=True
        )
    ]


class DetectionTrack:
    """An open track: :meth:`append` one line per written frame, then :meth:`close`."""

    def __init__(self, path: Path) -> None:
        """Create (truncate) ``path``; raises ``OSError`` as opening any file does."""
        self.path = path
        self._file = open(path, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 - kept open

    def append(
        self,
        seconds: float,
        timestamp: datetime,
        frame_id: int | None,
        detections: list[dict[str, Any]],
    ) -> None:
        """Write one frame's line (flushed to the OS with its newline); ``detections`` are
        :func:`detection_rows`."""
        line = {
            "t": round(seconds, 6),
            "time": timestamp.astimezone(timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "frame_id": frame_id,
            "detections": detections,
        }
        self._file.write(json.dumps(line, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._file.close()


def read_track(path: Path) -> list[dict[str, Any]]:
    """The lines of a track; a last line cut short by a crash is left out."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                rows.append(json.loads(line))
            except ValueError:
                if line.endswith("\n"):
                    raise  # a damaged line in the middle is not a torn end
    return rows
