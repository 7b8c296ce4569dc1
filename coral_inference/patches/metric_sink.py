"""Patch ``metric_sink``: one metric point per processed frame of every pipeline.

Points carry pipeline id, source id, frame id, the frame's UTC timestamp, latency (capture to
result), processing fps, the detection count and the configured ``services.metrics.fields`` taken
from the predictions. They go through a batching, bounded writer to SQLite (default) or InfluxDB;
reverting the patch flushes and closes it.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Any

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.patches.tap import (
    PIPELINE_CLASS,
    detection_count,
    frame_timestamp_utc,
    tap_pipelines,
)
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord

FPS_SMOOTHING = 0.1

_lock = threading.Lock()
_last: dict[str, Any] = {}


def last_run_stats() -> dict[str, Any]:
    """Where the last writer of this process wrote and its counters (after it closed)."""
    with _lock:
        return dict(_last)


class _FrameMetrics:
    """One pipeline's per-source fps estimate and point builder."""

    def __init__(self, writer: Any, pipeline_id: str, fields: list[str]) -> None:
        from coral_inference.services.metrics.points import MetricPoint

        self.point = MetricPoint
        self.writer = writer
        self.pipeline_id = pipeline_id
        self.fields = fields
        self.previous: dict[Any, tuple[float, float]] = {}

    def on_frame(self, predictions: dict[str, Any] | None, frame: Any) -> None:
        now = time.monotonic()
        last_seen, fps = self.previous.get(frame.source_id, (None, 0.0))
        if last_seen is not None and now > last_seen:
            instant = 1.0 / (now - last_seen)
            fps = instant if fps == 0.0 else fps + FPS_SMOOTHING * (instant - fps)
        self.previous[frame.source_id] = (now, fps)
        stamp = frame_timestamp_utc(frame)
        extra: dict[str, Any] = {}
        model_time = (predictions or {}).get("time")
        if isinstance(model_time, float):
            extra["inference_ms"] = model_time * 1000
        for name in self.fields:
            value = (predictions or {}).get(name)
            if isinstance(value, (int, float, str, bool)):
                extra[name] = value
        self.writer.submit(
            self.point(
                pipeline_id=self.pipeline_id,
                source_id=frame.source_id,
                frame_id=frame.frame_id,
                timestamp=stamp,
                latency_ms=max(0.0, (datetime.now(timezone.utc) - stamp).total_seconds() * 1000),
                fps=fps,
                detections=detection_count(predictions),
                fields=extra,
            )
        )

    def close(self) -> None:
        """The writer is shared by all pipelines; it is closed when the patch is reverted."""


class MetricSinkPatch(Patch):
    name = "metric_sink"
    description = "per-frame latency/fps/detections to SQLite or InfluxDB, batched and bounded"
    inference = TESTED_INFERENCE
    targets = (PIPELINE_CLASS,)

    def __init__(self) -> None:
        self._writer: Any = None
        self._settings: dict[str, Any] = {}
        self._close_all = None

    def settings(self, context: PatchContext) -> object:
        return sorted((k, str(v)) for k, v in context.config.section("services.metrics").items())

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        from coral_inference.services.metrics.factory import create_store

        self._settings = context.config.section("services.metrics")
        self._writer = writer = create_store(self._settings)
        fields = list(self._settings.get("fields") or [])
        self._close_all = tap_pipelines(
            patcher,
            targets[PIPELINE_CLASS],
            self.name,
            lambda pipeline_id, _: _FrameMetrics(writer, pipeline_id, fields),
        )

    def uninstall(self) -> None:
        if self._close_all is not None:
            self._close_all()
        if self._writer is not None:
            self._writer.close()
            stats = self._writer.stats
            where = (
                self._settings["path"]
                if self._settings["store"] == "sqlite"
                else f"{self._settings['url']}/write?db={self._settings['database']}"
            )
            with _lock:
                _last.clear()
                _last.update(
                    store=self._settings["store"],
                    target=str(where),
                    written=stats.written,
                    dropped=stats.dropped,
                    rejected=stats.rejected,
                    pending=stats.pending,
                    last_error=stats.last_error,
                )
            self._writer = None


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(MetricSinkPatch())
