"""``/coral/recordings``: the closed segments under ``services.recording.dir``, with their
detections tracks (``SEGMENT.jsonl``, see :mod:`coral_inference.services.recording.track`).

Files are addressed as ``/coral/recordings/{pipeline_id}/{source}/{file}`` relative to the
pipeline's directory; a path that is not plain (``..``, absolute) or not a closed segment or
its track is
refused with 4xx before the file system is asked, and one whose resolved path (links followed)
leaves the recording root is answered 404, as is a missing one.
Serving goes through Starlette's ``FileResponse``, which answers HTTP Range requests (206).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from coral_inference.app.serve.settings import ServeError
from coral_inference.services.recording.segment_names import is_closed_segment
from coral_inference.services.recording.track import track_path

PIPELINE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RecordingPathError(ServeError):
    """A recording path outside the recording root, or not a segment."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@lru_cache(maxsize=1024)
def _probe(path: str, size: int, mtime_ns: int) -> tuple[int, float]:
    """(frames, fps) of a closed segment; cached per file version."""
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), float(capture.get(cv2.CAP_PROP_FPS))
    finally:
        capture.release()


def _start(name: str) -> datetime:
    return datetime.strptime(name[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)


class RecordingIndex:
    """Lists and resolves segments below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def segments(self, pipeline_id: str | None = None) -> list[dict[str, Any]]:
        if pipeline_id is not None:
            self._check_id(pipeline_id)
        if not self.root.is_dir():
            return []
        directories = (
            [self.root / pipeline_id]
            if pipeline_id is not None
            else sorted(p for p in self.root.iterdir() if p.is_dir())
        )
        found = []
        for directory in directories:
            if not directory.is_dir():
                continue
            for path in sorted(directory.rglob("*.mp4")):
                if not is_closed_segment(path.name) or not path.is_file():
                    continue
                if not path.resolve().is_relative_to(self.root):
                    continue  # behind a link that leads out of the root
                stat = path.stat()
                frames, fps = _probe(str(path), stat.st_size, stat.st_mtime_ns)
                start = _start(path.name)
                end = start + timedelta(seconds=frames / fps) if fps > 0 else start
                relative = path.relative_to(directory).as_posix()
                url = f"/coral/recordings/{directory.name}/{relative}"
                track = track_path(path)
                found.append(
                    {
                        "pipeline_id": directory.name,
                        "file": relative,
                        "url": url,
                        "track": track_path(Path(url)).as_posix() if track.is_file() else None,
                        "start": start.isoformat().replace("+00:00", "Z"),
                        "end": end.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                        "size": stat.st_size,
                        "frames": frames,
                    }
                )
        found.sort(key=lambda s: (s["pipeline_id"], s["start"], s["file"]))
        return found

    def resolve(self, pipeline_id: str, file: str) -> Path:
        """The segment's path; RecordingPathError (400/404) for anything else."""
        self._check_id(pipeline_id)
        parts = file.split("/")
        if file.startswith("/") or "\\" in file or any(p in ("", ".", "..") for p in parts):
            raise RecordingPathError(f"recording path {file!r} is not a plain relative path")
        name = parts[-1]
        if not (is_closed_segment(name) or is_closed_segment(str(Path(name).with_suffix(".mp4")))):
            raise RecordingPathError(f"{name!r} is not a recording segment or track name")
        path = (self.root / pipeline_id / file).resolve()
        # the resolved path, links followed, must stay under the root itself: a link anywhere
        # below it (a pipeline folder included) must not lead out
        if not path.is_relative_to(self.root) or not path.is_file():
            raise RecordingPathError(f"no recording {pipeline_id}/{file}", status=404)
        return path

    @staticmethod
    def _check_id(pipeline_id: str) -> None:
        if not PIPELINE_ID.match(pipeline_id):
            raise RecordingPathError(f"{pipeline_id!r} is not a pipeline id")
