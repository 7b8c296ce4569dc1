"""Patch ``frame_sinks``: every pipeline feeds the frame sinks plugins registered through the
``register_frame_sinks`` hook.

It taps every ``InferencePipeline`` (the one mechanism the built-in recorder, metric and ring
sinks use, :mod:`coral_inference.patches.tap`); per pipeline, each registered factory is called
and its sink fed through its own bounded queue and thread
(:mod:`coral_inference.services.frame_sinks`), so the inference thread only ever enqueues.
"""

from __future__ import annotations

from typing import Any

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.patches.tap import PIPELINE_CLASS, tap_pipelines
from coral_inference.runtime.config import RuntimeDescriptor
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord
from coral_inference.services.frame_sinks import FrameSinkHub, PipelineSinks


class FrameSinksPatch(Patch):
    name = "frame_sinks"
    description = "feeds every pipeline's frames to the sinks plugins register (off-thread)"
    inference = TESTED_INFERENCE
    targets = (PIPELINE_CLASS,)

    def __init__(self) -> None:
        self.hub: FrameSinkHub | None = None
        self.config: RuntimeDescriptor | None = None

    def bind(self, context: PatchContext) -> None:
        assert context.services is not None, "frame_sinks needs the runtime's services"
        self.hub = context.services.frame_sinks
        self.config = context.config

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        def make_sink(pipeline_id: str, _: Any) -> PipelineSinks:
            assert self.hub is not None, "frame_sinks applied without runtime services"
            return self.hub.open(pipeline_id, self.config)

        tap_pipelines(patcher, targets[PIPELINE_CLASS], self.name, make_sink)


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(FrameSinksPatch())
