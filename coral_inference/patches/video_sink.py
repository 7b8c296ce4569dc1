"""Patch ``video_sink``: annotated, segmented recording of every pipeline and source.

Files go to ``services.recording.dir/<pipeline_id>/<source_id>/``; encoding runs on a writer
thread behind a bounded queue (see
:class:`~coral_inference.services.recording.recorder.SegmentedRecorder`),
so a slow or failing disk drops frames (counted) but never stalls or stops the pipeline.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.patches.tap import PIPELINE_CLASS, tap_pipelines
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord
from coral_inference.services.predictions import PredictionBoxes, frame_timestamp_utc
from coral_inference.services.runtime_services import RecordingLog

log = logging.getLogger(__name__)
GIB = 1024**3
DEFAULT_FPS = 25.0
#: How long a pipeline's end waits for its recorders to write what they queued. Generous: the
#: writer runs at background priority, which a busy board starves; frames still queued after
#: it are reported ``pending`` (a loss), never as written.
CLOSE_SECONDS = 120.0


class _PipelineRecorder:
    """One pipeline's recorders, one per source, created on the source's first frame."""

    def __init__(
        self,
        root: Path,
        pipeline_id: str,
        settings: dict[str, Any],
        retention: Any,
        log_to: RecordingLog,
    ) -> None:
        self.log_to = log_to
        self.root = root
        self.pipeline_id = pipeline_id
        self.settings = settings
        self.retention = retention
        self.recorders: dict[Any, Any] = {}

    def on_frame(self, predictions: dict[str, Any] | None, frame: Any) -> None:
        recorder = self.recorders.get(frame.source_id)
        if recorder is None:
            recorder = self.recorders[frame.source_id] = self._open(frame)
        recorder.submit(
            frame.image,
            PredictionBoxes(predictions),
            timestamp=frame_timestamp_utc(frame),
            frame_id=frame.frame_id,
        )

    def _open(self, frame: Any) -> Any:
        from coral_inference.services.recording.recorder import SegmentedRecorder

        fps = getattr(frame, "fps", None) or DEFAULT_FPS
        directory = self.root / self.pipeline_id / str(frame.source_id)
        recorder = SegmentedRecorder(
            directory,
            fps=float(fps),
            segment_seconds=self.settings["segment_seconds"],
            queue_size=self.settings["queue_size"],
            track=self.settings["track"],
            retain=self.settings["retain"],
            pre_seconds=self.settings["pre_seconds"],
            post_seconds=self.settings["post_seconds"],
            codec=self.settings["codec"],
            retention=self.retention,
        )
        self.log_to.opened(self.pipeline_id, recorder)
        return recorder

    def close(self) -> None:
        for recorder in self.recorders.values():
            recorder.close(timeout=CLOSE_SECONDS)
            self.log_to.closed(self.pipeline_id, recorder.stats, recorder)
        self.recorders.clear()


class VideoSinkPatch(Patch):
    name = "video_sink"
    description = "annotated, segmented recordings of every pipeline (off the inference thread)"
    inference = TESTED_INFERENCE
    targets = (PIPELINE_CLASS,)

    def __init__(self) -> None:
        self._close_all = None
        self.recordings: RecordingLog | None = None

    def bind(self, context: PatchContext) -> None:
        assert context.services is not None, "video_sink needs the runtime's services"
        self.recordings = context.services.recordings

    def settings(self, context: PatchContext) -> object:
        return sorted(context.config.section("services.recording").items())

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        from coral_inference.services.recording.recovery import recover_partial_segments
        from coral_inference.services.recording.retention import RetentionPolicy
        from coral_inference.services.recording.video_writers import resolve_codec

        settings = context.config.section("services.recording")
        root = Path(settings["dir"])
        recover_partial_segments(root)  # what a crashed run left half-written
        resolve_codec(settings["codec"])  # imports PyAV now, not on the first frame's thread
        retention = RetentionPolicy(
            root,
            max_total_bytes=int(settings["max_total_gb"] * GIB),
            max_age_seconds=settings["max_age_days"] * 86400,
        )
        self._close_all = tap_pipelines(
            patcher,
            targets[PIPELINE_CLASS],
            self.name,
            lambda pipeline_id, _: _PipelineRecorder(
                root, pipeline_id, settings, retention, self._recording_log()
            ),
        )

    def _recording_log(self) -> RecordingLog:
        assert self.recordings is not None
        return self.recordings

    def finish(self) -> None:
        if self._close_all is not None:
            self._close_all()

    def uninstall(self) -> None:
        self.finish()


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(VideoSinkPatch())
