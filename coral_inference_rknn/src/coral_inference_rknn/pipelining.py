"""One stream, every NPU context busy: frames in flight up to the pool size, in frame order.

``inference``'s ``InferencePipeline`` runs one loop on its inference thread: take the next
frame(s) from the source, call ``on_video_frame(frames)`` (the model, synchronously), queue the
predictions for the sink thread. One stream therefore keeps exactly one NPU context busy, however
many the pool holds.

The ``rknn_pipeline`` patch keeps that loop and changes what it is fed. When the pipeline's model
runs on a session advertising ``max_in_flight > 1`` (an :class:`~.session.RknnPool` with
``pipeline: true``), the loop's frame generator is wrapped by :class:`OrderedPipeline`: it reads
ahead, hands every frame to a worker thread that calls the pipeline's own ``on_video_frame`` on
it (one frame per call, so a multiplexed batch is spread over the pool too), and yields a batch to
the loop only once its predictions are ready, which ``on_video_frame`` then returns. So:

* up to ``max_in_flight`` frames are being inferred at once, each on its own context (the pool
  hands a free context to each call);
* predictions reach the sinks in exactly the order the frames came from the source, each as
  soon as it and the ones before it are done (a reader thread pulls the source, so a live
  camera's frame never waits for the frames after it);
* memory is bounded: the read-ahead never holds more than ``max_in_flight`` frames, and a source
  that produces faster than the NPU waits in ``inference``'s own bounded frame buffer;
* an error in any frame ends the loop as it would have without the patch (after the frames
  before it were delivered), and the frames still in flight are awaited, never abandoned.

Anything else (custom ``on_video_frame`` logic, workflows, a session without ``max_in_flight``)
runs the original loop unchanged.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

PIPELINE_CLASS = "inference.core.interfaces.stream.inference_pipeline:InferencePipeline"


class OrderedPipeline(Generic[Item, Result]):
    """Apply ``fn`` to items on ``depth`` worker threads, yielding ``(item, result)`` in order.

    A reader thread pulls items from the source only while fewer than ``depth`` are taken (in
    flight or being handed over), so at most ``depth`` items are held and ``depth`` calls run at
    once. Each result is yielded as soon as it and the ones before it are done: a live source
    that delivers frames slowly adds no latency waiting for the frames after it.
    """

    def __init__(self, fn: Callable[[Item], Result], depth: int) -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.fn = fn
        self.depth = depth
        self._executor = ThreadPoolExecutor(depth, thread_name_prefix="coral-rknn-frame")

    def map(self, items: Iterable[Item]) -> Iterator[tuple[Item, Result]]:
        slots = threading.Semaphore(self.depth)
        handoff: queue.Queue[tuple[bool, Any]] = queue.Queue()
        stop = threading.Event()

        def read() -> None:
            source = iter(items)
            try:
                while True:
                    slots.acquire()
                    if stop.is_set():
                        return
                    try:
                        item = next(source)
                    except StopIteration:
                        handoff.put((True, None))
                        return
                    handoff.put((False, (item, self._executor.submit(self.fn, item))))
            except BaseException as exc:  # noqa: BLE001 - the source's error, re-raised in order
                handoff.put((True, exc))

        reader = threading.Thread(target=read, name="coral-rknn-read", daemon=True)
        reader.start()
        try:
            while True:
                finished, payload = handoff.get()
                if finished:
                    if payload is not None:
                        raise payload
                    return
                item, future = payload
                try:
                    yield item, future.result()
                finally:
                    slots.release()
        finally:
            stop.set()
            slots.release()  # wake a reader waiting for a slot, so that it sees ``stop``
            while True:
                try:
                    finished, payload = handoff.get_nowait()
                except queue.Empty:
                    break
                if not finished and not payload[1].cancel():
                    payload[1].exception()  # wait for it; its error was superseded by ours

    def close(self) -> None:
        self._executor.shutdown(wait=True)

    def __enter__(self) -> OrderedPipeline[Item, Result]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def in_flight_limit(on_video_frame: Any) -> int:
    """How many frames the pipeline's model may run at once (1 unless it says otherwise).

    ``InferencePipeline.init(model_id=...)`` builds ``on_video_frame`` as a ``functools.partial``
    holding the model; coral-inference's models hold a runner whose session may advertise
    ``max_in_flight``.
    """
    model = getattr(on_video_frame, "keywords", {}).get("model")
    session = getattr(getattr(model, "runner", None), "session", None)
    limit = getattr(session, "max_in_flight", 1)
    return limit if isinstance(limit, int) and limit > 1 else 1


def pipelined_batches(
    batches: Iterable[list[Any]], on_video_frame: Callable[[list[Any]], list[Any]], depth: int
) -> Iterator[tuple[list[Any], list[Any]]]:
    """``(frames, predictions)`` for each batch from ``batches``, in order, each frame of a
    batch inferred on its own (``on_video_frame([frame])``), ``depth`` frames in flight."""

    def frames() -> Iterator[tuple[int, int, Any]]:
        for batch in batches:
            for position, frame in enumerate(batch):
                yield len(batch), position, frame

    with OrderedPipeline(lambda job: on_video_frame([job[2]]), depth) as pipeline:
        batch: list[Any] = []
        predictions: list[Any] = []
        for (size, _, frame), result in pipeline.map(frames()):
            batch.append(frame)
            predictions.extend(result)
            if len(batch) == size:
                yield batch, predictions
                batch, predictions = [], []


def _pipelined_execute(original: Callable[[Any], None]) -> Callable[[Any], None]:
    def _execute_inference(self: Any) -> None:
        on_video_frame = self._on_video_frame
        depth = in_flight_limit(on_video_frame)
        if depth <= 1:
            return original(self)
        log.info("pipelining the inference loop: up to %d frames in flight", depth)
        generate = self._generate_frames
        ready: deque[list[Any]] = deque()

        def generate_ready() -> Iterator[list[Any]]:
            for frames, predictions in pipelined_batches(generate(), on_video_frame, depth):
                ready.append(predictions)
                yield frames

        self._generate_frames = generate_ready
        self._on_video_frame = lambda frames: ready.popleft()
        try:
            return original(self)
        finally:
            del self._generate_frames
            self._on_video_frame = on_video_frame

    return _execute_inference


class PipelinePatch(Patch):
    name = "rknn_pipeline"
    description = "keep every RKNN context busy for one stream (frames in flight, in order)"
    inference = TESTED_INFERENCE
    targets = (PIPELINE_CLASS,)

    def not_needed(self, context: PatchContext) -> str | None:
        """Skipped where the runtime's rknn backend cannot run (no NPU, so no pool to keep
        busy), or where no rknn backend is registered."""
        backend = context.backends.get("rknn")
        if backend is None:
            return "no rknn backend is registered in this runtime"
        status = backend.availability()
        if status.available:
            return None
        first_sentence = status.reason.split(". ", 1)[0]
        return f"the rknn backend is unavailable here, nothing to pipeline: {first_sentence}"

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        patcher.wrap(targets[PIPELINE_CLASS], "_execute_inference", _pipelined_execute)


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(PipelinePatch())
