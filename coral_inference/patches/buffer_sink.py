"""Patch ``buffer_sink``: a bounded in-memory ring of recent results per pipeline.

Preview (WebRTC) and HTTP consumers read it with their own cursors, so several readers never
steal each other's frames; see :class:`~coral_inference.services.ring.FrameRing`.
"""

from __future__ import annotations

import threading
from typing import Any

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.patches.tap import PIPELINE_CLASS, tap_pipelines
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord
from coral_inference.services.ring import FrameRing

_lock = threading.Lock()
_rings: dict[str, FrameRing] = {}


def get_ring(pipeline_id: str) -> FrameRing | None:
    """The ring of a pipeline built while the patch was applied (None if there is none)."""
    with _lock:
        return _rings.get(pipeline_id)


class _RingSink:
    def __init__(self, ring: FrameRing) -> None:
        self.ring = ring

    def on_frame(self, predictions: dict[str, Any] | None, frame: Any) -> None:
        self.ring.append(predictions, frame)

    def close(self) -> None:
        """The ring stays readable after the pipeline ends, until the patch is reverted."""


class BufferSinkPatch(Patch):
    name = "buffer_sink"
    description = "bounded ring of recent (predictions, frame) per pipeline for preview and HTTP"
    inference = TESTED_INFERENCE
    targets = (PIPELINE_CLASS,)

    def settings(self, context: PatchContext) -> object:
        return context.config.get("services.buffer.size")

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        size = context.config.get("services.buffer.size")

        def make_sink(pipeline_id: str, _: Any) -> _RingSink:
            ring = FrameRing(size)
            with _lock:
                _rings[pipeline_id] = ring
            return _RingSink(ring)

        tap_pipelines(patcher, targets[PIPELINE_CLASS], self.name, make_sink)

    def uninstall(self) -> None:
        with _lock:
            _rings.clear()


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(BufferSinkPatch())
