"""Patch ``buffer_sink``: a bounded in-memory ring of recent results per pipeline.

The rings belong to the runtime (``context.services.rings``); preview (WebRTC) and HTTP consumers
read them with their own cursors, so several readers never steal each other's frames; see
:class:`~coral_inference.services.ring.FrameRing`.
"""

from __future__ import annotations

from typing import Any

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.patches.tap import PIPELINE_CLASS, tap_pipelines
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord
from coral_inference.services.ring import FrameRing
from coral_inference.services.runtime_services import RuntimeServices


class _RingSink:
    def __init__(self, ring: FrameRing) -> None:
        self.ring = ring

    def on_frame(self, predictions: dict[str, Any] | None, frame: Any) -> None:
        self.ring.append(predictions, frame)

    def close(self) -> None:
        """The ring stays readable after the pipeline ends, as long as its runtime."""


class BufferSinkPatch(Patch):
    name = "buffer_sink"
    description = "bounded ring of recent (predictions, frame) per pipeline for preview and HTTP"
    inference = TESTED_INFERENCE
    targets = (PIPELINE_CLASS,)

    def __init__(self) -> None:
        self.services: RuntimeServices | None = None

    def bind(self, context: PatchContext) -> None:
        self.services = context.services

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        def make_sink(pipeline_id: str, _: Any) -> _RingSink:
            assert self.services is not None, "buffer_sink applied without runtime services"
            return _RingSink(self.services.rings.create(pipeline_id))

        tap_pipelines(patcher, targets[PIPELINE_CLASS], self.name, make_sink)


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(BufferSinkPatch())
