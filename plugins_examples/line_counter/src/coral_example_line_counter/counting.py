"""Line crossing counts from tracked points: plain numpy, no ``inference`` import.

A crossing is counted when a track's anchor point was strictly on one side of a line segment
and is now strictly on the other, and the path between those two points intersects the
segment itself (passing around an end of the line is not a crossing). Points exactly on the
line are ignored, so jitter on the line cannot count twice.

Direction follows ``inference``'s own ``roboflow_core/line_counter``: for the line
``[[0, 100], [100, 100]]`` an object coming from below (larger y) counts ``in``; for a line drawn
top to bottom, moving left to right counts ``in``.

State is bounded: a track not seen for ``forget_after_frames`` frames of its video is dropped,
and :class:`VideoCounters` keeps at most ``max_videos`` videos (least recently seen dropped).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Line:
    """A named line segment in frame pixels."""

    name: str
    start: tuple[float, float]
    end: tuple[float, float]

    @classmethod
    def parse(cls, value: Any, index: int) -> Line:
        """``{"name": "door", "start": [x, y], "end": [x, y]}`` or ``[[x, y], [x, y]]``."""
        if isinstance(value, Mapping):
            name, points = (
                value.get("name", f"line_{index}"),
                [value.get("start"), value.get("end")],
            )
        else:
            name, points = f"line_{index}", list(value) if isinstance(value, Sequence) else []
        try:
            (x1, y1), (x2, y2) = ((float(x), float(y)) for x, y in points)
        except (TypeError, ValueError):
            raise ValueError(
                f"lines[{index}]: expected {{'name': ..., 'start': [x, y], 'end': [x, y]}} or "
                f"[[x, y], [x, y]], got {value!r}"
            ) from None
        if (x1, y1) == (x2, y2):
            raise ValueError(f"lines[{index}] ({name!r}): start and end are the same point")
        return cls(str(name), (x1, y1), (x2, y2))


def parse_lines(values: Iterable[Any]) -> list[Line]:
    lines = [Line.parse(value, index) for index, value in enumerate(values)]
    names = [line.name for line in lines]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"lines: names must be unique, repeated: {', '.join(duplicates)}")
    if not lines:
        raise ValueError("lines: give at least one line")
    return lines


def _cross(origin: np.ndarray, direction: np.ndarray, points: np.ndarray) -> np.ndarray:
    relative = points - origin
    return direction[0] * relative[:, 1] - direction[1] * relative[:, 0]


@dataclass
class _Track:
    side: int  # +1 / -1: the last side the anchor was strictly on
    point: tuple[float, float]  # where it was then
    last_seen: int  # frame index of the video


@dataclass
class LineCounter:
    """In/out counts of one line in one video, and the tracks it remembers."""

    line: Line
    forget_after_frames: int = 30
    count_in: int = 0
    count_out: int = 0
    tracks: dict[int, _Track] = field(default_factory=dict)

    def update(
        self, frame_index: int, tracker_ids: np.ndarray, points: np.ndarray
    ) -> tuple[list[int], list[int]]:
        """Feed one frame's tracked anchor points; return the tracker ids that crossed in and
        out on this frame."""
        start = np.asarray(self.line.start, np.float64)
        end = np.asarray(self.line.end, np.float64)
        direction = end - start
        points = np.asarray(points, np.float64).reshape(-1, 2)
        sides = np.sign(_cross(start, direction, points)).astype(int)
        crossed_in: list[int] = []
        crossed_out: list[int] = []
        for tracker_id, side, point in zip(
            tracker_ids.tolist(), sides.tolist(), points, strict=True
        ):
            track = self.tracks.get(tracker_id)
            if track is not None:
                track.last_seen = frame_index
            if side == 0:
                continue
            here = (float(point[0]), float(point[1]))
            if track is None:
                self.tracks[tracker_id] = _Track(side, here, frame_index)
                continue
            if side != track.side and self._path_meets_segment(track.point, here, start, end):
                if track.side > 0:
                    self.count_in += 1
                    crossed_in.append(tracker_id)
                else:
                    self.count_out += 1
                    crossed_out.append(tracker_id)
            track.side, track.point = side, here
        self._forget(frame_index)
        return crossed_in, crossed_out

    @staticmethod
    def _path_meets_segment(
        a: tuple[float, float], b: tuple[float, float], start: np.ndarray, end: np.ndarray
    ) -> bool:
        """Whether the path a->b (known to change sides of the line) meets the segment."""
        path = np.asarray(b) - np.asarray(a)
        ends = np.stack([start, end])
        s1, s2 = np.sign(_cross(np.asarray(a, np.float64), path, ends))
        return s1 != s2 or s1 == 0

    def _forget(self, frame_index: int) -> None:
        horizon = frame_index - self.forget_after_frames
        stale = [tid for tid, track in self.tracks.items() if track.last_seen < horizon]
        for tracker_id in stale:
            del self.tracks[tracker_id]


class VideoCounters:
    """Counters per video and per line, bounded in videos, lines and tracks."""

    def __init__(self, forget_after_frames: int = 30, max_videos: int = 64) -> None:
        if forget_after_frames < 1 or max_videos < 1:
            raise ValueError("forget_after_frames and max_videos must be at least 1")
        self.forget_after_frames = forget_after_frames
        self.max_videos = max_videos
        self._videos: OrderedDict[str, tuple[list[Line], dict[str, LineCounter], list[int]]] = (
            OrderedDict()
        )

    def update(
        self, video: str, lines: list[Line], tracker_ids: np.ndarray, points: np.ndarray
    ) -> dict[str, dict[str, Any]]:
        """Count one frame of ``video``; return ``{line: {"in", "out", "crossed_in",
        "crossed_out"}}``. Changing a video's lines starts its counts again."""
        entry = self._videos.get(video)
        if entry is None or entry[0] != lines:
            counters = {line.name: LineCounter(line, self.forget_after_frames) for line in lines}
            entry = (list(lines), counters, [0])
            self._videos[video] = entry
        self._videos.move_to_end(video)
        while len(self._videos) > self.max_videos:
            self._videos.popitem(last=False)
        _, counters, frame = entry
        frame[0] += 1
        out = {}
        for name, counter in counters.items():
            crossed_in, crossed_out = counter.update(frame[0], tracker_ids, points)
            out[name] = {
                "in": counter.count_in,
                "out": counter.count_out,
                "crossed_in": crossed_in,
                "crossed_out": crossed_out,
            }
        return out

    def tracked_entries(self, video: str | None = None) -> int:
        """How many track entries are held (for one video, or all): the state's size."""
        videos = [self._videos[video]] if video in self._videos else []
        if video is None:
            videos = list(self._videos.values())
        return sum(len(c.tracks) for _, counters, _ in videos for c in counters.values())

    @property
    def videos(self) -> list[str]:
        return list(self._videos)
