"""Patch ``metric_sink``: one metric point per processed frame of every pipeline.

Points carry pipeline id, source id, frame id, the frame's UTC timestamp, the end-to-end time
(capture to result), the model's latency (the prediction's ``time``), processing fps, the
detection count and the configured ``services.metrics.fields`` taken from the predictions. They
go through a batching, bounded writer to SQLite (default) or InfluxDB; reverting the patch
flushes and closes it.
"""

from __future__ import annotations

import time
from typing import Any

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.patches.tap import PIPELINE_CLASS, tap_pipelines
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord
from coral_inference.services.frame_clock import frame_age_ms
from coral_inference.services.predictions import (
    detection_count,
    frame_timestamp_utc,
)
from coral_inference.services.runtime_services import MetricsService, ModelTimes

FPS_SMOOTHING = 0.1


class _FrameMetrics:
    """One pipeline's per-source fps estimate and point builder."""

    def __init__(
        self, writer: MetricsService, model_times: ModelTimes, pipeline_id: str, fields: list[str]
    ) -> None:
        from coral_inference.services.metrics.points import MetricPoint

        self.point = MetricPoint
        self.writer = writer
        self.model_times = model_times
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
                end_to_end_ms=frame_age_ms(frame),
                fps=fps,
                detections=detection_count(predictions),
                fields=extra,
                latency_ms=self.model_times.of(predictions),
            )
        )

    def close(self) -> None:
        """The writer is the runtime's, shared by its pipelines; it closes with the runtime."""


class MetricSinkPatch(Patch):
    name = "metric_sink"
    description = "per-frame model latency, end-to-end time, fps, detections to SQLite or InfluxDB"
    inference = TESTED_INFERENCE
    targets = (PIPELINE_CLASS,)

    def __init__(self) -> None:
        self.metrics: MetricsService | None = None
        self.model_times: ModelTimes | None = None

    def bind(self, context: PatchContext) -> None:
        assert context.services is not None, "metric_sink needs the runtime's services"
        self.metrics = context.services.metrics
        self.model_times = context.services.model_times

    def settings(self, context: PatchContext) -> object:
        return list(context.config.get("services.metrics.fields") or [])

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        fields = list(context.config.get("services.metrics.fields") or [])

        def make_sink(pipeline_id: str, _: Any) -> _FrameMetrics:
            assert self.metrics is not None and self.model_times is not None
            return _FrameMetrics(self.metrics, self.model_times, pipeline_id, fields)

        tap_pipelines(patcher, targets[PIPELINE_CLASS], self.name, make_sink)


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(MetricSinkPatch())
