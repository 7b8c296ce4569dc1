"""Run a frame sink over the sample video, through real discovery, ``init`` and ``inference``.

:func:`run_frame_sink` is what the ``coral_frame_sink_run`` fixture calls: it registers the
factory as a temporary plugin (its ``register_frame_sinks`` hook), starts the runtime, runs an
``InferencePipeline`` with the sample model over the video to its end, and returns what the
pipeline processed and what the hub counted for the sink.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coral_inference import hookimpl

if TYPE_CHECKING:
    from coral_inference.runtime import RuntimeContext
    from coral_inference.services.frame_sinks import FrameSinkFactory
    from coral_inference.testing.plugins import TemporaryPlugins

#: The name the sink's temporary plugin is registered under (its counters' key).
PLUGIN_NAME = "sink_under_test"


@dataclass
class SinkRun:
    """One run's outcome: ``frames`` the pipeline processed, the sink's ``counts`` (frames,
    dropped, failed, pending) and the runtime ``context`` (its ``problems()``)."""

    frames: int
    counts: dict[str, int]
    context: RuntimeContext


class _SinkPlugin:
    """A plugin object registering one factory."""

    def __init__(self, factory: FrameSinkFactory, options: Mapping[str, Any]) -> None:
        self.factory = factory
        self.options = dict(options)

    @hookimpl
    def register_frame_sinks(self, register: Any) -> None:
        register(self.factory, **self.options)


def run_frame_sink(
    factory: FrameSinkFactory,
    *,
    plugins: TemporaryPlugins,
    start_runtime: Callable[..., RuntimeContext],
    model_dir: Path,
    video: Path,
    config: Mapping[str, Any] | None = None,
    **options: Any,
) -> SinkRun:
    """Register ``factory`` (``options``: ``with_image``, ``queue_size``, ``close_timeout_s``),
    run the model at ``model_dir`` over ``video`` and return the :class:`SinkRun`."""
    from inference import InferencePipeline

    from coral_inference.models.package import load_package

    plugins.register(_SinkPlugin(factory, options), PLUGIN_NAME, group="patches")
    model_id = load_package(model_dir).manifest.name
    context = start_runtime({"models": {model_id: str(model_dir)}, **(config or {})})
    processed: list[int] = []
    pipeline = InferencePipeline.init(
        video_reference=str(video),
        model_id=model_id,
        on_prediction=lambda _predictions, frame: processed.append(frame.frame_id),
    )
    pipeline.start(use_main_thread=False)
    pipeline.join()  # closes the pipeline's sinks: the counts are final
    counts = context.services.frame_sinks.stats().get(
        PLUGIN_NAME, {"frames": 0, "dropped": 0, "failed": 0, "pending": 0}
    )
    return SinkRun(frames=len(processed), counts=counts, context=context)
