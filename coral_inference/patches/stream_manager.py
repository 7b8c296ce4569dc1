"""Patch ``stream_manager``: no wait in ``inference``'s stream manager can last forever.

The stream manager (``inference.core.interfaces.stream_manager.manager_app.app``; from
``inference`` 1.x on, the same module object as ``streamvision.stream_manager.manager_app.app``)
drives one process per pipeline through a command queue and a responses queue. Upstream, a
pipeline process that stops answering blocks its caller, and with it the single-threaded TCP
server or the health-check thread, forever. This patch replaces five module functions, which the
manager looks up at call time, with the methods of a :class:`StreamManagerGuard`:

* ``get_response_ignoring_thrash`` waits at most ``command_timeout_seconds`` (while the request
  handler's ``_initialise_pipeline`` or ``_start_webrtc`` waits for a pipeline to start:
  ``start_timeout_seconds``), then answers an ``operation_error``; ``not_found`` as soon as the
  pipeline process is dead. A response read by one waiter but meant for another (0.54 sends INIT
  and the health check's STATUS to the same pipeline without its lock) is kept for that waiter
  instead of being dropped.
* ``handle_command`` waits at most ``lock_timeout_seconds`` for the pipeline's operation lock,
  then answers a ``busy`` ``operation_error``.
* ``check_process_health`` sweeps every ``health_check_seconds`` without holding the processes
  table lock while it waits on a pipeline. A pipeline failing ``failure_budget`` consecutive
  STATUS checks (error, timeout or dead) is removed from the table and its process terminated,
  then killed after ``termination_grace_seconds``. A check answered ``busy`` counts neither way,
  and a pipeline still starting is not checked (0.54 starts one without taking its lock).
  Everything else upstream's sweep does (RAM samples, reaping dead processes, terminating
  pipelines whose sources all ended) is kept, except that a pipeline whose sources all ended
  normally is retired once its inference thread finished, not terminated with frames still in
  its decode buffer.
* ``join_inference_pipeline`` joins for ``termination_grace_seconds``, then kills.
* ``execute_termination`` (the SIGINT/SIGTERM handler) terminates every pipeline process, kills
  those alive after the grace period, and no longer raises ``TypeError`` on 0.54 (it indexed the
  ``ManagedInferencePipeline`` dataclass as a tuple).

Pipeline processes are forked from the manager, so every sink patch applied there taps their
pipelines too; ``InferencePipelineManager._initialise_pipeline`` and ``_start_webrtc`` are wrapped
so those pipelines are named after the manager's pipeline id (one recording directory and one
metrics tag per managed pipeline, instead of ``pipeline-1`` in every forked process).

``app.start()`` hands ``check_process_health`` and ``execute_termination`` to its threads and
signal handlers when it runs, so the patch must be applied before it.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from queue import Empty
from types import FrameType, ModuleType
from typing import Any

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.patches.tap import pipeline_name
from coral_inference.patches.video_sink import CLOSE_SECONDS
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord

log = logging.getLogger(__name__)

APP = "inference.core.interfaces.stream_manager.manager_app.app"
MANAGER = (
    "inference.core.interfaces.stream_manager.manager_app.inference_pipeline_manager"
    ":InferencePipelineManager"
)
HANDLER = f"{APP}:InferencePipelinesManagerHandler"
#: The methods that start a pipeline, on both sides: the request handler's (which wait up to
#: ``start_timeout_seconds``) and the pipeline process's (which build its ``InferencePipeline``).
STARTERS = ("_initialise_pipeline", "_start_webrtc")
SECTION = "services.stream_manager"
#: The functions replaced in the manager module.
REPLACED = (
    "get_response_ignoring_thrash",
    "handle_command",
    "check_process_health",
    "join_inference_pipeline",
    "execute_termination",
)
#: Where a start takes its pipeline process (warm, or spawned): wrapped to mark it starting.
CLAIM = "get_or_spawn_pipeline_process"
#: The manager module's names the replacements use.
USED = (
    "PROCESSES_TABLE",
    "PROCESSES_TABLE_LOCK",
    "STREAM_MANAGER_MAX_RAM_MB",
    "INFERENCE_THREAD_FINISHED_EVENT",
    "StreamState",
    "CommandType",
    "ErrorType",
    "OperationStatus",
    "TYPE_KEY",
    "PIPELINE_ID_KEY",
    "STATUS_KEY",
    "REPORT_KEY",
    "SOURCES_METADATA_KEY",
    "STATE_KEY",
    "VIDEO_SOURCE_STATUS_UPDATES_KEY",
    "describe_error",
    "_get_process_memory_usage_mb",
    "_get_current_process_ram_usage_mb",
)
#: Longest single blocking read of a responses queue, so deadlines and deaths are noticed.
POLL_SECONDS = 0.25
#: How long to wait for a process to go after SIGKILL.
KILL_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class Limits:
    """The ``services.stream_manager`` settings."""

    command_timeout: float
    start_timeout: float
    lock_timeout: float
    health_interval: float
    failure_budget: int
    grace: float

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> Limits:
        return cls(
            command_timeout=float(section["command_timeout_seconds"]),
            start_timeout=float(section["start_timeout_seconds"]),
            lock_timeout=float(section["lock_timeout_seconds"]),
            health_interval=float(section["health_check_seconds"]),
            failure_budget=int(section["failure_budget"]),
            grace=float(section["termination_grace_seconds"]),
        )


def stop_processes(processes: list[Any], grace: float, *, terminate: bool = True) -> None:
    """SIGTERM each process (unless ``terminate`` is off), wait up to ``grace`` seconds for all
    of them together, then SIGKILL the ones still alive."""
    if terminate:
        for process in processes:
            if process.is_alive():
                process.terminate()
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    stuck = [process for process in processes if process.is_alive()]
    for process in stuck:
        log.warning("pipeline process %s still alive after %.1fs; killing it", process.pid, grace)
        process.kill()
    for process in stuck:
        process.join(KILL_WAIT_SECONDS)


#: How long the process of a pipeline whose source ended may take to close its sinks before it
#: is killed: the recorder's own close limit, and some.
ENDED_GRACE_SECONDS = CLOSE_SECONDS + 30.0

#: An extra key of an INIT/WEBRTC command naming the pipelines it builds (``coral serve``
#: keeps its pipelines' names stable across restarts); inference's payload models ignore it.
NAME_KEY = "coral_pipeline_id"


def named_after_managed_pipeline(original: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an ``InferencePipelineManager`` method so the pipelines it builds take the
    command's ``coral_pipeline_id``, else the managed pipeline's id, as their name."""

    @functools.wraps(original)
    def build(self: Any, *args: Any, **kwargs: Any) -> Any:
        payload = kwargs.get("payload")
        given = payload.get(NAME_KEY) if isinstance(payload, dict) else None
        name = given if isinstance(given, str) and given else self._pipeline_id
        with pipeline_name(name):
            return original(self, *args, **kwargs)

    return build


class ParkedResponses:
    """Responses a waiter read from a shared queue but that answer another request.

    Each is kept until its own waiter claims it or, unclaimed after ``keep_seconds`` (the answer
    to a request that already timed out), dropped with a warning as upstream drops "thrash".
    """

    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._parked: dict[str, tuple[float, Any]] = {}

    def park(self, request_id: str, response: Any) -> None:
        now = time.monotonic()
        with self._lock:
            for stale in [k for k, (t, _) in self._parked.items() if now - t > self.keep_seconds]:
                log.warning("dropping unclaimed response to request %s", stale)
                del self._parked[stale]
            self._parked[request_id] = (now, response)

    def claim(self, request_id: str) -> Any | None:
        with self._lock:
            entry = self._parked.pop(request_id, None)
        return None if entry is None else entry[1]


class StreamManagerGuard:
    """The bounded replacements of the manager module's functions (see the module docstring)."""

    def __init__(self, app: ModuleType, limits: Limits) -> None:
        self.app = app
        self.limits = limits
        self._parked = ParkedResponses(max(limits.command_timeout, limits.start_timeout))
        self._failures: dict[str, int] = {}
        self._stopped = threading.Event()
        self._starting = threading.local()
        self._lock = threading.Lock()
        self._awaiting_start: set[int] = set()

    def stop(self) -> None:
        """End the health-check loops running this guard's :meth:`check_process_health`."""
        self._stopped.set()

    def starting(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a request handler method so the waits it makes allow ``start_timeout_seconds``."""

        @functools.wraps(original)
        def start(handler: Any, *args: Any, **kwargs: Any) -> Any:
            self._starting.active = True
            try:
                return original(handler, *args, **kwargs)
            finally:
                self._starting.active = False
                claimed = getattr(self._starting, "claimed", None)
                self._starting.claimed = None
                if claimed is not None:
                    with self._lock:
                        self._awaiting_start.discard(claimed)

        return start

    def claiming(self, original: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``get_or_spawn_pipeline_process``: a process taken for a start counts as
        starting from that moment, not only once the handler waits for its answer, so the
        health check cannot catch it in between (it did, under load: a check timed out on a
        pipeline that was still being built and spent its whole failure budget)."""

        @functools.wraps(original)
        def claim(*args: Any, **kwargs: Any) -> Any:
            managed = original(*args, **kwargs)
            if getattr(self._starting, "active", False):
                with self._lock:
                    self._awaiting_start.add(id(managed.responses_queue))
                self._starting.claimed = id(managed.responses_queue)
            return managed

        return claim

    def error(self, message: str, error_type: Any = None) -> dict:
        """An upstream-shaped failure response (``operation_error`` unless told)."""
        return self.app.describe_error(
            exception=None,
            error_type=error_type or self.app.ErrorType.OPERATION_ERROR,
            public_error_message=message,
        )

    def get_response_ignoring_thrash(
        self,
        responses_queue: Any,
        matching_request_id: str,
        *,
        pipeline_process: Any = None,
        pipeline_id: str | None = None,
    ) -> dict:
        """The response to ``matching_request_id``, or an error response once the deadline
        passes or ``pipeline_process`` (when given) is dead with nothing left to read."""
        name = f"InferencePipeline with id={pipeline_id}" if pipeline_id else "InferencePipeline"
        wait = functools.partial(self._wait, responses_queue, matching_request_id, pipeline_process)
        if not getattr(self._starting, "active", False):
            return wait(name, self.limits.command_timeout)
        with self._lock:
            self._awaiting_start.add(id(responses_queue))
        try:
            return wait(name, self.limits.start_timeout)
        finally:
            with self._lock:
                self._awaiting_start.discard(id(responses_queue))

    def is_starting(self, managed: Any) -> bool:
        """Whether a request handler is waiting for this pipeline to start."""
        with self._lock:
            return id(managed.responses_queue) in self._awaiting_start

    def _wait(
        self,
        responses_queue: Any,
        matching_request_id: str,
        pipeline_process: Any,
        name: str,
        timeout: float,
    ) -> dict:
        """Read ``responses_queue`` until the answer, the deadline or the process's death."""
        deadline = time.monotonic() + timeout
        while True:
            parked = self._parked.claim(matching_request_id)
            if parked is not None:
                return parked
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.error(f"{name} did not answer within {timeout:g}s.")
            try:
                request_id, response = responses_queue.get(timeout=min(POLL_SECONDS, remaining))
            except Empty:
                if pipeline_process is None or pipeline_process.is_alive():
                    continue
                try:  # an answer written right before the process died still counts
                    request_id, response = responses_queue.get_nowait()
                except Empty:
                    return self.error(f"{name} is not running.", self.app.ErrorType.NOT_FOUND)
            if request_id == matching_request_id:
                return response
            self._parked.park(request_id, response)

    def command(self, managed: Any, request_id: str, command: dict) -> dict | None:
        """Send ``command`` to one pipeline under its operation lock and wait for the answer;
        None when the lock stayed busy for ``lock_timeout_seconds``."""
        if not managed.operation_lock.acquire(timeout=self.limits.lock_timeout):
            return None
        try:
            managed.command_queue.put((request_id, command))
            return self.get_response_ignoring_thrash(
                managed.responses_queue,
                request_id,
                pipeline_process=managed.pipeline_manager,
                pipeline_id=managed.pipeline_id,
            )
        finally:
            managed.operation_lock.release()

    def handle_command(
        self,
        processes_table: Mapping[str, Any],
        request_id: str,
        pipeline_id: str,
        command: dict,
    ) -> dict:
        """Upstream's ``handle_command`` with a bounded lock wait and a bounded answer wait."""
        managed = processes_table.get(pipeline_id)
        if managed is None:
            return self.error(
                f"Could not find InferencePipeline with id={pipeline_id}.",
                self.app.ErrorType.NOT_FOUND,
            )
        response = self.command(managed, request_id, command)
        if response is None:
            return self.error(
                f"InferencePipeline with id={pipeline_id} is busy with another operation "
                f"(waited {self.limits.lock_timeout:g}s); try again later."
            )
        return response

    def join_inference_pipeline(
        self, processes_table: MutableMapping[str, Any], pipeline_id: str
    ) -> None:
        """Join a pipeline process told to terminate; kill it after the grace period."""
        stop_processes(
            [processes_table[pipeline_id].pipeline_manager], self.limits.grace, terminate=False
        )
        processes_table.pop(pipeline_id, None)

    def execute_termination(
        self,
        signal_number: int,
        frame: FrameType | None,
        processes_table: Mapping[str, Any],
    ) -> None:
        """The manager's signal handler: stop every pipeline process, then exit."""
        app = self.app
        locked = app.PROCESSES_TABLE_LOCK.acquire(timeout=self.limits.lock_timeout)
        try:
            pipelines = list(processes_table.values())
            log.info("signal %s: terminating %d pipeline(s)", signal_number, len(pipelines))
            stop_processes([p.pipeline_manager for p in pipelines], self.limits.grace)
            for pipeline in pipelines:
                pipeline.command_queue.close()
                pipeline.responses_queue.close()
        finally:
            if locked:
                app.PROCESSES_TABLE_LOCK.release()
        sys.exit(0)

    def check_process_health(self) -> None:
        """Sweep every ``health_check_seconds`` until this guard is stopped; then hand over to
        the guard of a re-applied patch, if the module now holds one."""
        while not self._stopped.is_set():
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the health thread must outlive one bad sweep
                log.exception("stream manager health sweep failed")
            self._stopped.wait(self.limits.health_interval)
        successor = self.app.check_process_health
        if isinstance(getattr(successor, "__self__", None), StreamManagerGuard):
            successor()

    def sweep(self) -> None:
        """One pass of upstream's health check over ``PROCESSES_TABLE``, with the budget."""
        app = self.app
        total_ram = app._get_current_process_ram_usage_mb()
        with app.PROCESSES_TABLE_LOCK:
            pipelines = list(app.PROCESSES_TABLE.items())
        live = {pipeline_id for pipeline_id, _ in pipelines}
        self._failures = {k: v for k, v in self._failures.items() if k in live}
        for pipeline_id, managed in pipelines:
            process = managed.pipeline_manager
            ram = app._get_process_memory_usage_mb(process=process)
            managed.ram_usage_queue.append(ram)
            if managed.is_terminating:
                continue
            if not process.is_alive():
                log.warning("process of pipeline %s is not alive; removing it", pipeline_id)
                self.retire(pipeline_id, managed)
                continue
            total_ram += ram
            limit = app.STREAM_MANAGER_MAX_RAM_MB
            if limit is not None and total_ram > limit:
                log.warning("process of pipeline %s is above the RAM limit", pipeline_id)
            if managed.is_idle or self.is_starting(managed):
                continue
            response = self.command(
                managed, uuid.uuid4().hex, self._message(app.CommandType.STATUS, pipeline_id)
            )
            if response is None:
                continue
            if response.get(app.STATUS_KEY) != app.OperationStatus.SUCCESS:
                self._count_failure(pipeline_id, managed, response)
                continue
            self._failures.pop(pipeline_id, None)
            if self._sources_ended(response):
                total_ram -= ram
                self._end(pipeline_id, managed, response)

    def retire(
        self, pipeline_id: str, managed: Any, *, terminate: bool = True, ended: bool = False
    ) -> None:
        """Remove a pipeline from the table, then stop its process (kill after the grace).

        A pipeline that ``ended`` (its source did) still closes its sinks on the way out, and a
        recorder on a busy board may take up to its ``CLOSE_SECONDS`` to write what it queued:
        its process gets :data:`ENDED_GRACE_SECONDS`, waited for on a thread of its own so the
        health check goes on (a kill there would lose those frames and the final counters).
        """
        app = self.app
        with app.PROCESSES_TABLE_LOCK:
            if app.PROCESSES_TABLE.get(pipeline_id) is managed:
                del app.PROCESSES_TABLE[pipeline_id]
        self._failures.pop(pipeline_id, None)
        if not ended:
            stop_processes([managed.pipeline_manager], self.limits.grace, terminate=terminate)
            return
        grace = max(self.limits.grace, ENDED_GRACE_SECONDS)
        threading.Thread(
            target=stop_processes,
            args=([managed.pipeline_manager], grace),
            kwargs={"terminate": terminate},
            name=f"coral-retire-{pipeline_id}",
            daemon=True,
        ).start()

    def _message(self, kind: Any, pipeline_id: str) -> dict:
        return {self.app.TYPE_KEY: kind, self.app.PIPELINE_ID_KEY: pipeline_id}

    def _count_failure(self, pipeline_id: str, managed: Any, response: dict) -> None:
        failures = self._failures.get(pipeline_id, 0) + 1
        self._failures[pipeline_id] = failures
        reason = response.get("public_error_message") or response
        log.warning(
            "health check %d/%d of pipeline %s failed: %s",
            failures,
            self.limits.failure_budget,
            pipeline_id,
            reason,
        )
        if failures >= self.limits.failure_budget:
            log.error("pipeline %s exhausted its health-check budget; stopping it", pipeline_id)
            self.retire(pipeline_id, managed)

    def _sources_ended(self, response: dict, states: tuple[Any, ...] | None = None) -> bool:
        """Whether every source is in one of ``states`` (default: ended or failed). A pipeline
        with a live source (a stream or camera) never has: while it reconnects, inference's
        video source passes through ``ENDED`` and ``ERROR`` on each attempt, and upstream's
        health check took that for the end and terminated the pipeline on a camera outage."""
        app = self.app
        final = set(states or (app.StreamState.ENDED, app.StreamState.ERROR))
        report = response.get(app.REPORT_KEY) or {}
        sources = report.get(app.SOURCES_METADATA_KEY, [])
        if any(not _is_file(source) for source in sources):
            return False
        seen = {s[app.STATE_KEY] for s in sources if app.STATE_KEY in s}
        return bool(seen) and seen <= final

    def _end(self, pipeline_id: str, managed: Any, response: dict) -> None:
        """Stop a pipeline whose sources all ended, as upstream does."""
        app = self.app
        log.info("all sources of pipeline %s ended; terminating it", pipeline_id)
        updates = response[app.REPORT_KEY].get(app.VIDEO_SOURCE_STATUS_UPDATES_KEY, [])
        events = [u["event_type"] for u in updates if u.get("context") == "inference_pipeline"]
        if not events:
            return
        if events[-1] == app.INFERENCE_THREAD_FINISHED_EVENT:
            self.retire(pipeline_id, managed, ended=True)
            return
        if self._sources_ended(response, states=(app.StreamState.ENDED,)):
            # Upstream terminates here and loses the frames still in the decode buffer (a
            # video file is decoded ahead): let the pipeline finish them, retire it then.
            log.info("sources of pipeline %s ended; waiting for its last frames", pipeline_id)
            return
        answer = self.command(
            managed, uuid.uuid4().hex, self._message(app.CommandType.TERMINATE, pipeline_id)
        )
        if answer is None or answer.get(app.STATUS_KEY) != app.OperationStatus.SUCCESS:
            log.error("pipeline %s did not terminate: %s", pipeline_id, answer)
            return
        self.retire(pipeline_id, managed, terminate=False)


def _is_file(source: dict) -> bool:
    """Whether a source of a STATUS report is a video file (which ends) rather than a stream or
    camera (which inference reconnects); a source that never opened is judged by its name."""
    properties = source.get("source_properties") or {}
    if "is_file" in properties:
        return bool(properties["is_file"])
    reference = source.get("source_reference")
    return isinstance(reference, str) and os.path.isfile(reference)


class StreamManagerPatch(Patch):
    name = "stream_manager"
    description = (
        "bounded command waits, busy answers, a health-check failure budget and kill after a "
        "grace period in the stream manager"
    )
    inference = TESTED_INFERENCE
    targets = (APP, HANDLER, MANAGER, *(f"{APP}:{name}" for name in (*REPLACED, CLAIM, *USED)))

    def __init__(self) -> None:
        self._guard: StreamManagerGuard | None = None

    def settings(self, context: PatchContext) -> object:
        return sorted(context.config.section(SECTION).items())

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        app = targets[APP]
        self._guard = StreamManagerGuard(app, Limits.from_config(context.config.section(SECTION)))
        for name in REPLACED:
            patcher.replace(app, name, getattr(self._guard, name))
        patcher.wrap(app, CLAIM, self._guard.claiming)
        for name in STARTERS:
            patcher.wrap(targets[HANDLER], name, self._guard.starting)
        for name in STARTERS:
            patcher.wrap(targets[MANAGER], name, named_after_managed_pipeline)

    def uninstall(self) -> None:
        if self._guard is not None:
            self._guard.stop()
            self._guard = None


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(StreamManagerPatch())
