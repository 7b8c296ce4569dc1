"""Recovering the ``*.partial.mp4`` segments a crashed recorder left behind.

Segments are written as fragmented MP4 (see :mod:`.video_writers`), so after a crash, a
SIGKILL or a power cut the partial file still plays up to its last fragment. At start the frames
a partial file holds are counted: if any can be decoded it becomes a closed segment (and so
falls under retention); if none can, it is moved aside as ``*.damaged.mp4``, which retention
also counts and deletes in turn. A segment's detections track (``.partial.jsonl``) goes with it.
Every outcome is logged and returned for the job to report.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from coral_inference.services.recording.segment_names import (
    closed_path,
    damaged_path,
    is_partial_segment,
)
from coral_inference.services.recording.track import track_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recovered:
    """What happened to one partial segment."""

    partial: Path
    result: Path
    frames: int
    """Decodable frames (0: moved aside as damaged)."""

    def __str__(self) -> str:
        if self.frames:
            return f"recovered {self.partial} -> {self.result} ({self.frames} frames)"
        return f"moved aside {self.partial} -> {self.result} (no decodable frame)"


def decodable_frames(path: Path) -> int:
    """How many frames of ``path`` decode (0 for a file without a usable index)."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = 0
    try:
        while capture.isOpened() and capture.grab():
            frames += 1
    finally:
        capture.release()
    return frames


def recover_partial_segments(root: Path) -> list[Recovered]:
    """Finalise or move aside every ``*.partial.mp4`` under ``root``; call before recording.

    Never raises for a file it cannot handle: that one is logged and left where it is.
    """
    outcomes = []
    if not root.is_dir():
        return outcomes
    for directory, _, names in os.walk(root):
        for name in sorted(n for n in names if is_partial_segment(n)):
            partial = Path(directory, name)
            try:
                frames = decodable_frames(partial)
                target = _free(closed_path(partial) if frames else damaged_path(partial))
                if track_path(partial).exists():  # its detections track goes with it
                    track_path(partial).replace(track_path(target))
                partial.replace(target)
            except OSError as exc:
                logger.warning("cannot recover the unfinished segment %s: %s", partial, exc)
                continue
            outcome = Recovered(partial, target, frames)
            logger.warning("unfinished segment of an earlier run: %s", outcome)
            outcomes.append(outcome)
    return outcomes


def _free(path: Path) -> Path:
    """``path``, or the same name with the next free sequence number (names stay segment names
    so that retention keeps managing them)."""
    stem, _, suffix = path.name.partition(".")
    base, _, sequence = stem.rpartition("_")
    number = int(sequence) if sequence.isdigit() else 0
    while path.exists():
        number += 1
        path = path.with_name(f"{base}_{number:06d}.{suffix}")
    return path
