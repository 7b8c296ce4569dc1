"""Attach extra sinks to every ``InferencePipeline``, however it was created.

A sink patch calls :func:`tap_pipelines` with a factory; every pipeline constructed while the
patch is applied gets its own sink from that factory. The pipeline's ``on_prediction`` runs
first, unchanged; then each tapped sink sees every (predictions, frame) pair, one frame at a time
whatever the pipeline's ``sink_mode``. A sink that raises is logged once and never reaches the
pipeline. Sinks are closed when the pipeline's ``join()`` returns, or when the patch is reverted.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import itertools
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from coral_inference.runtime.patching import Patcher
from coral_inference.services.frame_clock import FrameClock

log = logging.getLogger(__name__)

PIPELINE_CLASS = "inference.core.interfaces.stream.inference_pipeline:InferencePipeline"

#: Returned by a pipeline's own ``on_prediction`` to withhold that frame from the tapped sinks
#: (``coral run --max-frames`` uses it so recordings and metrics stop at the same frame).
DROP = object()

_next_id = itertools.count(1)
_pipeline_name: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "coral_pipeline_name", default=None
)


@contextlib.contextmanager
def pipeline_name(name: str) -> Iterator[None]:
    """Name the pipelines constructed inside this block (default ``pipeline-<n>``)."""
    token = _pipeline_name.set(name)
    try:
        yield
    finally:
        _pipeline_name.reset(token)


class FrameSink(Protocol):
    """What a sink factory returns for one pipeline."""

    def on_frame(self, predictions: dict[str, Any] | None, frame: Any) -> None:
        """One processed frame: ``predictions`` as ``inference`` serialises them (or None for a
        frame without a result), ``frame`` an ``inference`` ``VideoFrame``."""

    def close(self) -> None:
        """The pipeline ended (or the patch is reverted): flush and release."""


class _GuardedSink:
    """One pipeline's sink, kept from raising into the pipeline: its first failing frame is
    logged with the traceback, later ones only counted (the state lives and dies with the
    sink, so a long-running process does not collect the names of past pipelines)."""

    def __init__(
        self,
        label: str,
        sink: FrameSink,
        closes_after: Callable[[], list[_GuardedSink]] | None = None,
    ) -> None:
        self.label = label
        self.sink = sink
        self.closes_after = closes_after  # sinks to close before this one (see tap_pipelines)
        self.failures = 0
        self._closing = threading.Lock()
        self._closed = False

    def on_frame(self, predictions: Any, frame: Any) -> None:
        try:
            self.sink.on_frame(predictions, frame)
        except Exception:  # noqa: BLE001 - a sink must never take the pipeline down
            self.failures += 1
            if self.failures == 1:
                log.exception("%s sink failed (further failures are not logged)", self.label)

    def close(self) -> None:
        """Close the sink once; a second caller (the pipeline's ``join`` in one thread, the
        runtime's shutdown or a signal handler in another) returns only once it is closed, so
        a sink tapped outside this one never publishes before this one finished."""
        with self._closing:
            if self._closed:
                return
            self._closed = True
            for other in self.closes_after() if self.closes_after else ():
                other.close()
            try:
                self.sink.close()
            except Exception:  # noqa: BLE001 - closing one sink must not stop the others
                log.exception("%s sink failed to close", self.label)
            if self.failures > 1:
                log.warning("%s sink failed on %d frames", self.label, self.failures)


class _Tap:
    """The sinks one patch attached, so the patch can close them all when reverted."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.open: weakref.WeakKeyDictionary[Any, _GuardedSink] = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    def close(self, pipeline: Any) -> None:
        with self.lock:
            sink = self.open.get(pipeline)
        if sink is not None:
            sink.close()  # waits while another thread closes it
            with self.lock:
                self.open.pop(pipeline, None)

    def close_all(self) -> None:
        with self.lock:
            sinks = list(self.open.items())
        for pipeline, sink in sinks:
            sink.close()
            with self.lock:
                self.open.pop(pipeline, None)


def as_serialised(predictions: Any) -> Any:
    """A workflow's ``{"predictions": sv.Detections, ...}`` output (what stream-manager
    pipelines produce) in the serialised shape of a model response, which the sinks read;
    anything else unchanged."""
    if not isinstance(predictions, dict):
        return predictions
    detections = predictions.get("predictions")
    if detections is None or isinstance(detections, list) or not hasattr(detections, "xyxy"):
        return predictions
    from inference.core.workflows.core_steps.common.serializers import serialise_sv_detections

    return {**predictions, **serialise_sv_detections(detections)}


def _pairs(predictions: Any, frames: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(frames, list):
        for prediction, frame in zip(predictions, frames, strict=False):
            if frame is not None:
                yield as_serialised(prediction), frame
    elif frames is not None:
        yield as_serialised(predictions), frames


def tap_pipelines(
    patcher: Patcher,
    pipeline_class: type,
    name: str,
    make_sink: Callable[[str, Any], FrameSink],
    closes_last: bool = False,
) -> Callable[[], None]:
    """Give every pipeline built from now on a sink from ``make_sink(pipeline_id, pipeline)``.

    With ``closes_last`` the sink is closed only after every other sink of its pipeline (those
    without ``closes_last``) closed, whichever closer comes first and in whatever order the
    patches were applied: a sink that reports the others' final counters needs that.
    Returns a function that closes every sink still open (call it from ``Patch.uninstall``).
    """
    tap = _Tap(name)

    def wrap_init(original: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            if "_coral_pipeline_id" not in self.__dict__:
                self._coral_pipeline_id = _pipeline_name.get() or f"pipeline-{next(_next_id)}"
            clock = pipeline_clock(self)
            siblings: list[_GuardedSink] = self.__dict__.setdefault("_coral_sinks", [])
            sink = _GuardedSink(
                f"{name} ({self._coral_pipeline_id})",
                make_sink(self._coral_pipeline_id, self),
                closes_after=(
                    (lambda: [s for s in siblings if s.closes_after is None])
                    if closes_last
                    else None
                ),
            )
            siblings.append(sink)
            with tap.lock:
                tap.open[self] = sink
            downstream = self._on_prediction

            def on_prediction(predictions: Any, video_frames: Any) -> Any:
                video_frames = clock.restamp_all(video_frames)
                verdict = None
                try:
                    if downstream is not None:
                        verdict = downstream(predictions, video_frames)
                finally:
                    if verdict is not DROP:
                        for prediction, frame in _pairs(predictions, video_frames):
                            sink.on_frame(prediction, frame)
                return verdict

            self._on_prediction = on_prediction

        return __init__

    def wrap_join(original: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original)
        def join(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = original(self, *args, **kwargs)  # interrupted: the pipeline still runs
            tap.close(self)
            return result

        return join

    # Wrap where the methods are defined: in inference 1.x the public class is a subclass of
    # streamvision's pipeline, which the stream manager instantiates directly.
    patcher.wrap(_defining_class(pipeline_class, "__init__"), "__init__", wrap_init)
    patcher.wrap(_defining_class(pipeline_class, "join"), "join", wrap_join)
    return tap.close_all


def pipeline_clock(pipeline: Any) -> FrameClock:
    """The pipeline's :class:`FrameClock`, created (and fed inference's capture events) once."""
    clock = pipeline.__dict__.get("_coral_clock")
    if clock is None:
        clock = pipeline._coral_clock = FrameClock()
        handlers = getattr(pipeline, "_status_update_handlers", None)
        if isinstance(handlers, list):  # the list inference shares with the video sources
            handlers.append(clock.on_status)
    return clock


def _defining_class(cls: type, attribute: str) -> type:
    return next(klass for klass in cls.__mro__ if attribute in vars(klass))
