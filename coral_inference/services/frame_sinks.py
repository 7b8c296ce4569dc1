"""Plugins' frame sinks (the ``register_frame_sinks`` hook): per-frame results, off the
inference thread.

A plugin registers a factory; every pipeline start calls it with a :class:`SinkPipeline` and
gets back an object with ``on_frame(result)`` / ``close()`` (or None: nothing for this
pipeline). Each such sink gets its own bounded queue and worker thread (:class:`QueuedSink`):
the inference thread only appends to the queue, so a slow sink drops frames (counted) and never
stalls the pipeline; a sink that raises is counted, its plugin recorded ``failed`` (logged
once) and the pipeline goes on. The hub (:class:`FrameSinkHub`) belongs to the runtime's
services; the ``frame_sinks`` patch feeds it from the tap (:mod:`coral_inference.patches.tap`).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from coral_inference.services.frame_clock import frame_age_ms
from coral_inference.services.predictions import detection_count, frame_timestamp_utc

log = logging.getLogger(__name__)

#: Frames a sink may have waiting before new ones are dropped (``queue_size`` default).
DEFAULT_QUEUE_SIZE = 64
#: How long a pipeline's end waits for a sink to drain its queue and close (``close_timeout_s``).
DEFAULT_CLOSE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class FrameResult:
    """One processed frame, as a frame sink receives it.

    ``timestamp`` is the capture time (UTC) the runtime's frame clock assigned (honest for
    files read faster than real time, see :mod:`coral_inference.services.frame_clock`);
    ``end_to_end_ms`` is capture to result. ``predictions`` is ``inference``'s serialised result
    (boxes as centre ``x``/``y``, ``width``/``height`` in source-frame pixels), or None for a
    frame without one. ``image`` is the BGR ``numpy`` frame, only for a sink registered with
    ``with_image=True`` (None otherwise). Both are shared with the pipeline's other sinks: treat
    them as read-only (copy before changing).
    """

    pipeline_id: str
    source_id: int | None
    frame_id: int
    timestamp: datetime
    end_to_end_ms: float
    detections: int
    predictions: dict[str, Any] | None
    image: Any = None


@dataclass(frozen=True)
class SinkPipeline:
    """What a sink factory is told about the pipeline that starts.

    ``config`` is the runtime's configuration (read your declared options from it);
    ``ended`` is set once the pipeline has ended and its sinks are closing: a sink doing long
    work per frame (uploads, retries) can check it to finish quickly.
    """

    pipeline_id: str
    config: Any
    ended: threading.Event = field(default_factory=threading.Event, compare=False)


class FrameResultsSink(Protocol):
    """What a frame-sink factory returns."""

    def on_frame(self, result: FrameResult) -> None:
        """One processed frame, called in order on the sink's own thread."""

    def close(self) -> None:
        """The pipeline ended (or the runtime shuts down): flush and release."""


FrameSinkFactory = Callable[[SinkPipeline], "FrameResultsSink | None"]


class RegisterFrameSink(Protocol):
    """The ``register`` callable ``register_frame_sinks`` receives."""

    def __call__(
        self,
        factory: FrameSinkFactory,
        *,
        with_image: bool = False,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        close_timeout_s: float = DEFAULT_CLOSE_TIMEOUT_S,
    ) -> None: ...


@dataclass(frozen=True)
class FrameSinkRegistration:
    """One ``register(...)`` call of one plugin, checked."""

    plugin: str
    factory: FrameSinkFactory
    with_image: bool
    queue_size: int
    close_timeout_s: float
    #: Records the plugin ``failed`` with a reason (its :class:`PluginRecord`'s ``fail``).
    report_failure: Callable[[str], None]

    @classmethod
    def checked(
        cls,
        plugin: str,
        report_failure: Callable[[str], None],
        factory: Any,
        with_image: Any = False,
        queue_size: Any = DEFAULT_QUEUE_SIZE,
        close_timeout_s: Any = DEFAULT_CLOSE_TIMEOUT_S,
    ) -> FrameSinkRegistration:
        """The registration, or ValueError saying which argument is wrong."""
        if not callable(factory):
            raise ValueError(f"register(factory, ...) needs a callable factory, got {factory!r}")
        if not isinstance(with_image, bool):
            raise ValueError(f"with_image must be True or False, got {with_image!r}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an int >= 1, got {queue_size!r}")
        if isinstance(close_timeout_s, bool) or not isinstance(close_timeout_s, (int, float)):
            raise ValueError(
                f"close_timeout_s must be a number of seconds, got {close_timeout_s!r}"
            )
        if close_timeout_s < 0:
            raise ValueError(f"close_timeout_s must be >= 0, got {close_timeout_s!r}")
        return cls(plugin, factory, with_image, queue_size, float(close_timeout_s), report_failure)


class QueuedSink:
    """One plugin's sink for one pipeline, fed through a bounded queue by its own thread.

    ``offer`` (the inference thread) never blocks: a full queue drops the new frame and counts
    it. The worker calls ``on_frame`` in order; an exception is counted, and the first one
    records the plugin ``failed`` and is logged with its traceback.
    """

    def __init__(
        self, registration: FrameSinkRegistration, pipeline: SinkPipeline, sink: FrameResultsSink
    ) -> None:
        self.plugin = registration.plugin
        self.pipeline_id = pipeline.pipeline_id
        self.registration = registration
        self.pipeline = pipeline
        self.sink = sink
        self.delivered = 0
        self.dropped = 0
        self.failed = 0
        self._items: collections.deque[FrameResult] = collections.deque()
        self._condition = threading.Condition()
        self._closing = False
        self._busy = False
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._work, name=f"coral-sink-{self.plugin}-{self.pipeline_id}", daemon=True
        )
        self._thread.start()

    @property
    def label(self) -> str:
        return f"frame sink of plugin {self.plugin!r} (pipeline {self.pipeline_id})"

    def offer(self, result: FrameResult) -> None:
        with self._condition:
            if self._closing:
                self.dropped += 1
            elif len(self._items) >= self.registration.queue_size:
                self.dropped += 1
            else:
                self._items.append(result)
                self._condition.notify()

    def counts(self) -> dict[str, int]:
        """``frames`` handled, ``dropped``, ``failed`` and ``pending`` (queued or in hand): they
        add up to the frames offered so far."""
        with self._condition:
            return {
                "frames": self.delivered,
                "dropped": self.dropped,
                "failed": self.failed,
                "pending": len(self._items) + int(self._busy),
            }

    def _report(self, what: str, exc: BaseException) -> None:
        """Log a failure with its traceback and record the plugin ``failed``."""
        log.error(
            "%s failed %s (further failures are counted, not logged)",
            self.label,
            what,
            exc_info=exc,
        )
        self.registration.report_failure(
            f"its frame sink raised {type(exc).__name__}: {exc} ({what}, pipeline "
            f"{self.pipeline_id}); the pipeline went on"
        )

    def _work(self) -> None:
        try:
            while True:
                with self._condition:
                    while not self._items and not self._closing:
                        self._condition.wait()
                    if not self._items:
                        break  # closing, and drained
                    item = self._items.popleft()
                    self._busy = True
                error: Exception | None = None
                try:
                    self.sink.on_frame(item)
                except Exception as exc:  # noqa: BLE001 - a plugin's sink must not stop others
                    error = exc
                with self._condition:  # counted and released at once: counts() adds up
                    self._busy = False
                    if error is None:
                        self.delivered += 1
                    else:
                        self.failed += 1
                    first_failure = error is not None and self.failed == 1
                if first_failure:
                    assert error is not None
                    self._report("in on_frame", error)
            try:
                self.sink.close()
            except Exception as exc:  # noqa: BLE001
                self._report("in close", exc)
        finally:
            self._done.set()

    def close(self) -> None:
        """Let the sink drain its queue and close, waiting up to ``close_timeout_s``; frames
        still queued after that are dropped (counted) and the sink closes when its current
        frame returns."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self.pipeline.ended.set()
        if not self._done.wait(self.registration.close_timeout_s):
            with self._condition:
                left = len(self._items)
                self.dropped += left
                self._items.clear()
            log.warning(
                "%s still busy %.0f s after the pipeline ended; %d queued frames dropped",
                self.label,
                self.registration.close_timeout_s,
                left,
            )


class PipelineSinks:
    """The plugins' sinks of one pipeline (what the ``frame_sinks`` patch taps in)."""

    def __init__(self, pipeline_id: str, sinks: list[QueuedSink]) -> None:
        self.pipeline_id = pipeline_id
        self.sinks = sinks
        self._plain = [s for s in sinks if not s.registration.with_image]
        self._imaged = [s for s in sinks if s.registration.with_image]

    def on_frame(self, predictions: dict[str, Any] | None, frame: Any) -> None:
        if not self.sinks:
            return
        result = FrameResult(
            pipeline_id=self.pipeline_id,
            source_id=getattr(frame, "source_id", None),
            frame_id=frame.frame_id,
            timestamp=frame_timestamp_utc(frame),
            end_to_end_ms=frame_age_ms(frame),
            detections=detection_count(predictions),
            predictions=predictions,
        )
        for sink in self._plain:
            sink.offer(result)
        if self._imaged:
            with_image = replace(result, image=getattr(frame, "image", None))
            for sink in self._imaged:
                sink.offer(with_image)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


class FrameSinkHub:
    """The runtime's registered frame sinks and the counters of every sink it opened."""

    def __init__(self) -> None:
        self.registrations: list[FrameSinkRegistration] = []
        self._opened: list[QueuedSink] = []
        self._lock = threading.Lock()

    def open(self, pipeline_id: str, config: Any) -> PipelineSinks:
        """Call every registered factory for a pipeline that starts."""
        sinks = []
        for registration in self.registrations:
            pipeline = SinkPipeline(pipeline_id, config)
            try:
                sink = registration.factory(pipeline)
            except Exception as exc:  # noqa: BLE001 - one plugin's factory must not stop others
                log.exception("frame sink factory of plugin %r failed", registration.plugin)
                registration.report_failure(
                    f"its frame sink factory raised {type(exc).__name__}: {exc} "
                    f"(pipeline {pipeline_id}); the pipeline runs without it"
                )
                continue
            if sink is None:
                continue
            if not callable(getattr(sink, "on_frame", None)) or not callable(
                getattr(sink, "close", None)
            ):
                registration.report_failure(
                    f"its frame sink factory returned {sink!r}, which lacks on_frame(result) / "
                    "close(); return such an object, or None to skip a pipeline"
                )
                continue
            sinks.append(QueuedSink(registration, pipeline, sink))
        with self._lock:
            self._opened.extend(sinks)
        return PipelineSinks(pipeline_id, sinks)

    def stats(self, pipeline_id: str | None = None) -> dict[str, dict[str, int]]:
        """``plugin -> {frames, dropped, failed, pending}``, summed over the sinks opened (for
        one pipeline, or all)."""
        with self._lock:
            opened = [s for s in self._opened if pipeline_id in (None, s.pipeline_id)]
        totals: dict[str, dict[str, int]] = {}
        for sink in opened:
            into = totals.setdefault(
                sink.plugin, {"frames": 0, "dropped": 0, "failed": 0, "pending": 0}
            )
            for key, value in sink.counts().items():
                into[key] += value
        return totals
