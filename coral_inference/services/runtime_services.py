"""The services one runtime owns: result rings, recordings and the metric writer.

:func:`coral_inference.init` creates a :class:`RuntimeServices` for its
:class:`~coral_inference.runtime.RuntimeContext`; the sink patches hand every pipeline's frames
to it, and :func:`coral_inference.shutdown` (or the next ``init``) closes it. Two runtimes, or
two ``init`` calls in a row, never share a ring, a recording list or a metric counter; readers
(the preview, ``coral run``'s summary, tests) ask the context instead of module globals.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coral_inference.services.frame_sinks import FrameSinkHub
from coral_inference.services.predictions import model_time_ms
from coral_inference.services.recording.totals import recorder_totals
from coral_inference.services.ring import FrameRing

if TYPE_CHECKING:
    from coral_inference.services.metrics.points import MetricPoint
    from coral_inference.services.metrics.writer import BufferedMetricWriter
    from coral_inference.services.recording.recorder import RecorderStats

log = logging.getLogger(__name__)


class RingRegistry:
    """One bounded :class:`FrameRing` per pipeline id."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rings: dict[str, FrameRing] = {}
        self._lock = threading.Lock()

    def create(self, pipeline_id: str) -> FrameRing:
        """A new, empty ring for ``pipeline_id`` (replacing an earlier pipeline's of that id)."""
        ring = FrameRing(self.size)
        with self._lock:
            self._rings[pipeline_id] = ring
        return ring

    def get(self, pipeline_id: str) -> FrameRing | None:
        """The ring of ``pipeline_id``; it stays readable after the pipeline ended."""
        with self._lock:
            return self._rings.get(pipeline_id)

    def pipelines(self) -> list[str]:
        with self._lock:
            return list(self._rings)


class RecordingLog:
    """The recorders of this runtime's pipelines, by pipeline id, once they closed."""

    def __init__(self) -> None:
        self._closed: dict[str, list[RecorderStats]] = {}
        self._open: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def opened(self, pipeline_id: str, recorder: Any) -> None:
        """A recorder of ``pipeline_id`` started (its counters count in :meth:`live`)."""
        with self._lock:
            self._open.setdefault(pipeline_id, []).append(recorder)

    def closed(self, pipeline_id: str, stats: RecorderStats, recorder: Any = None) -> None:
        with self._lock:
            self._closed.setdefault(pipeline_id, []).append(stats)
            live = self._open.get(pipeline_id, [])
            if recorder in live:
                live.remove(recorder)

    def live(self, pipeline_id: str) -> dict[str, int]:
        """Frames written / dropped / failed / pending and closed segments of the pipeline's
        recorders, open and closed, in this process."""
        with self._lock:
            stats = [r.stats for r in self._open.get(pipeline_id, [])]
            stats += self._closed.get(pipeline_id, [])
        return {**recorder_totals(stats), "segments": sum(len(s.segments) for s in stats)}

    def stats(self, pipeline_id: str | None = None) -> list[RecorderStats]:
        """Counters of every closed recorder (of one pipeline when given)."""
        with self._lock:
            if pipeline_id is not None:
                return list(self._closed.get(pipeline_id, ()))
            return [s for stats in self._closed.values() for s in stats]

    def segments(self, pipeline_id: str | None = None) -> list[Path]:
        """Every closed segment, oldest first per recorder."""
        return [path for stats in self.stats(pipeline_id) for path in stats.segments]


class MetricsService:
    """This runtime's metric writer (opened on the first point) and per-pipeline counters.

    The writer belongs to the process that opened it: a process forked from this one
    (inference's stream manager forks one per pipeline) opens its own on its first point, since
    a writer's thread does not survive a fork, and closes it when it exits
    (``multiprocessing``'s finalisers, which forked pipeline processes run).
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self._writer: BufferedMetricWriter | None = None
        self._pid = os.getpid()
        self._submitted: Counter[str] = Counter()
        self._summary: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def submit(self, point: MetricPoint) -> None:
        with self._lock:
            if self._summary is not None:
                raise RuntimeError("the metric service of this runtime is closed")
            if self._pid != os.getpid():  # forked: the parent's writer is not ours
                self._writer, self._pid = None, os.getpid()
                self._submitted.clear()
            if self._writer is None:
                from coral_inference.services.metrics.factory import create_store

                self._writer = create_store(self.settings)
                if multiprocessing.parent_process() is not None:
                    from multiprocessing import util

                    util.Finalize(self, self._writer.close, exitpriority=10)
            writer = self._writer
            self._submitted[point.pipeline_id] += 1
        writer.submit(point)

    def writer_stats(self) -> dict[str, Any]:
        """This process's writer counters (empty before its first point)."""
        with self._lock:
            writer = self._writer if self._pid == os.getpid() else None
        if writer is None:
            return {}
        stats = writer.stats
        return {
            "written": stats.written,
            "dropped": stats.dropped,
            "rejected": stats.rejected,
            "pending": stats.pending,
            "failures": stats.failures,
            "last_error": stats.last_error,
        }

    def submitted(self, pipeline_id: str | None = None) -> int:
        """Points submitted (by one pipeline when given)."""
        with self._lock:
            if pipeline_id is not None:
                return self._submitted[pipeline_id]
            return sum(self._submitted.values())

    @property
    def target(self) -> str:
        if self.settings["store"] == "sqlite":
            return str(self.settings["path"])
        return f"{self.settings['url']}/write?db={self.settings['database']}"

    def close(self) -> dict[str, Any]:
        """Flush and close the writer; return (and keep) the summary of what went where."""
        with self._lock:
            if self._summary is not None:
                return dict(self._summary)
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            stats = writer.stats
            counts = {
                "written": stats.written,
                "dropped": stats.dropped,
                "rejected": stats.rejected,
                "pending": stats.pending,
                "last_error": stats.last_error,
            }
        else:
            counts = {"written": 0, "dropped": 0, "rejected": 0, "pending": 0, "last_error": None}
        with self._lock:
            self._summary = {
                "store": self.settings["store"],
                "target": self.target,
                "submitted": sum(self._submitted.values()),
                "per_pipeline": dict(self._submitted),
                **counts,
            }
            return dict(self._summary)

    def summary(self) -> dict[str, Any] | None:
        """What :meth:`close` returned (None while open)."""
        with self._lock:
            return None if self._summary is None else dict(self._summary)


class ModelTimes:
    """The model's time per frame of this process's latest inference, recorded by coral's own
    models, for results that do not carry it (a workflow's model step drops inference's
    ``time``)."""

    def __init__(self) -> None:
        self._last_ms: float | None = None

    def record(self, seconds: float) -> None:
        self._last_ms = seconds * 1000

    def of(self, predictions: dict[str, Any] | None) -> float | None:
        """The model's time for this result in ms: its own ``time``, else the latest recorded
        here (None when neither exists)."""
        own = model_time_ms(predictions)
        return own if own is not None else self._last_ms


class RuntimeServices:
    """Everything with state that one runtime's sink patches feed."""

    def __init__(self, config: Any) -> None:
        self.model_times = ModelTimes()
        self.rings = RingRegistry(config.get("services.buffer.size"))
        self.recordings = RecordingLog()
        self.metrics = MetricsService(config.section("services.metrics"))
        self.frame_sinks = FrameSinkHub()

    def close(self) -> None:
        """Flush and close what is open; counters stay readable."""
        try:
            self.metrics.close()
        except Exception:  # noqa: BLE001 - closing must not raise out of shutdown
            log.exception("closing the metric writer failed")
