"""Example patch: draw each frame's capture time on inference's rendered frames.

The plugin module named by the ``coral_inference.patches`` entry point ``frame_stamp``.

It declares the patch and applies it; the drawing code (OpenCV, numpy) lives in
:mod:`coral_example_patch_frame_stamp.stamp` and is imported only when the patch is installed,
so ``coral plugins list`` stays light.
"""

import threading
from typing import Any

from coral_inference import hookimpl
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord

SINKS = "inference.core.interfaces.stream.sinks"
RENDER_BOXES = f"{SINKS}:render_boxes"


class FrameStamp(Patch):
    """Wrap ``render_boxes`` so every image it renders carries its frame's capture time.

    Like any attribute patch it reaches code that looks ``render_boxes`` up in its module after
    ``coral_inference.init()`` (an import, a ``VideoFileSink`` created then); a reference taken
    before ``init`` keeps the original. A reference to the wrapper taken while the patch was
    applied stops stamping when it is reverted (:meth:`uninstall`).
    """

    name = "frame_stamp"
    description = "render_boxes stamps each frame's capture time (UTC) on the rendered image"
    # Tested on inference-cpu 0.54.1 and 1.8.3; install() also checks the parameters it uses.
    inference = ">=0.54,<1.9"
    targets = (SINKS, RENDER_BOXES)

    def __init__(self) -> None:
        self._active = threading.Event()

    def install(self, patcher: Patcher, targets: dict[str, Any], context: PatchContext) -> None:
        from coral_example_patch_frame_stamp.stamp import stamping

        patcher.wrap(
            targets[SINKS], "render_boxes", lambda original: stamping(original, self._active)
        )
        self._active.set()

    def uninstall(self) -> None:
        self._active.clear()


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    """Apply :class:`FrameStamp` (``patches.frame_stamp: false`` turns it off)."""
    return context.apply(FrameStamp())
