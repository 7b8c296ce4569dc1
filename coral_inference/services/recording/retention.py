"""Deleting the oldest recorded segments to bound disk use and age."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import NamedTuple

from coral_inference.services.recording.segment_names import is_retained_file
from coral_inference.services.recording.track import track_path

logger = logging.getLogger(__name__)


class _SegmentFile(NamedTuple):
    mtime: float
    size: int
    path: Path


class RetentionPolicy:
    """Keeps the closed segments anywhere under ``root`` within a total size and a maximum age.

    Closed segments and the damaged ones recovery moved aside (``*.damaged.mp4``) are counted,
    with their detections tracks, and deleted oldest first (the track with its video);
    segments still being written (``*.partial.mp4``; a crash's leftovers become closed or
    damaged files at the next start) and unrelated files are never deleted. One policy may be
    shared by the recorders of all pipelines/sources under a recording root; :meth:`enforce` is
    thread-safe.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, max_total_bytes: int, max_age_seconds: float
    ):
        """Bound the segments under ``root`` to ``max_total_bytes`` and ``max_age_seconds``."""
        if max_total_bytes <= 0 or max_age_seconds <= 0:
            raise ValueError("max_total_bytes and max_age_seconds must be positive")
        self.root = Path(root)
        self.max_total_bytes = max_total_bytes
        self.max_age_seconds = max_age_seconds
        self._lock = threading.Lock()

    def enforce(self, now: float | None = None) -> list[Path]:
        """Delete closed segments, oldest (by mtime) first, while their total size exceeds the
        limit or they are older than the maximum age; return the deleted paths.

        ``now`` is a ``time.time()`` value (default: the current time). Failures to delete are
        logged and skipped; nothing is raised.
        """
        cutoff = (time.time() if now is None else now) - self.max_age_seconds
        deleted: list[Path] = []
        with self._lock:
            segments = sorted(self._segment_files())
            total = sum(segment.size for segment in segments)
            for segment in segments:
                if total <= self.max_total_bytes and segment.mtime >= cutoff:
                    break
                try:
                    segment.path.unlink(missing_ok=True)
                    track_path(segment.path).unlink(missing_ok=True)
                except OSError as exc:
                    logger.warning("Cannot delete old recording %s: %s", segment.path, exc)
                    continue
                total -= segment.size
                deleted.append(segment.path)
        if deleted:
            logger.debug("Retention deleted %d segment(s) under %s", len(deleted), self.root)
        return deleted

    def _segment_files(self) -> list[_SegmentFile]:
        """The files retention manages: closed segments and damaged ones moved aside."""
        found = []
        for directory, _, names in os.walk(self.root):
            for name in names:
                if not is_retained_file(name):
                    continue
                path = Path(directory, name)
                try:
                    stat = path.stat()
                except OSError:  # deleted meanwhile, e.g. by another policy on the same root
                    continue
                found.append(_SegmentFile(stat.st_mtime, stat.st_size + _size(path), path))
        return found


def _size(segment: Path) -> int:
    """The size of a segment's detections track (0 without one)."""
    try:
        return track_path(segment).stat().st_size
    except OSError:
        return 0
