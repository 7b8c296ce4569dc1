"""The ``stream_manager`` patch on inference's real stream manager, with real child processes.

Silent pipelines are real ``multiprocessing`` children on real queues that never answer (the
stubborn ones also ignore SIGTERM). Answering pipelines are inference's own pipeline processes,
started by the manager's own request handler (fed through a socket pair) for INIT requests that
run a step-less workflow on an MJPEG stream served on 127.0.0.1 or on a video file.
"""

from __future__ import annotations

import json
import multiprocessing
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from face_video import write_plain_video

pytest.importorskip("inference")
pytest.importorskip("psutil")

import cv2  # noqa: E402

import coral_inference  # noqa: E402
from coral_inference.app.serve.manager import pipeline_host_option  # noqa: E402
from coral_inference.patches.stream_manager import (  # noqa: E402
    APP,
    HANDLER,
    MANAGER,
    REPLACED,
    STARTERS,
)
from coral_inference.runtime import compat  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LIMITS = {
    "command_timeout_seconds": 2.0,
    "start_timeout_seconds": 60.0,
    "lock_timeout_seconds": 0.3,
    "health_check_seconds": 0.2,
    "failure_budget": 2,
    "termination_grace_seconds": 0.5,
}
FORK = multiprocessing.get_context("fork")
#: The workflow the answering pipelines run: no steps, the frame passed through.
WORKFLOW = {
    "version": "1.0",
    "inputs": [{"type": "WorkflowImage", "name": "image"}],
    "steps": [],
    "outputs": [{"type": "JsonField", "name": "image", "selector": "$inputs.image"}],
}


def app_module() -> Any:
    return compat.import_object(APP)


def runtime_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "platform": "cpu",
        "plugins": {"only": ["stream_manager", "video_sink"]},
        "services": {
            "stream_manager": LIMITS,
            "recording": {"dir": str(tmp_path / "recordings"), "segment_seconds": 60},
        },
    }


def stay_silent(ready: Any, got_sigterm: Any, ignore_sigterm: bool) -> None:
    """A pipeline process that never reads or answers a command."""
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, lambda *_: got_sigterm.set())
    ready.set()
    while True:
        time.sleep(0.05)


def answer(responses: Any, answers: list[tuple[str, dict]]) -> None:
    """A pipeline process that answers requests it was never sent, in the given order."""
    for request_id, response in answers:
        responses.put((request_id, response))


class Children:
    """Silent pipeline processes started by a test; all killed afterwards."""

    def __init__(self) -> None:
        self.started: list[Any] = []

    def silent(self, *, ignore_sigterm: bool = False) -> tuple[Any, Any]:
        """A ManagedInferencePipeline around a new silent child, and its SIGTERM event."""
        app = app_module()
        ready, got_sigterm = FORK.Event(), FORK.Event()
        process = FORK.Process(target=stay_silent, args=(ready, got_sigterm, ignore_sigterm))
        process.start()
        self.started.append(process)
        assert ready.wait(10)
        managed = app.ManagedInferencePipeline(
            pipeline_id=f"silent-{uuid.uuid4().hex[:8]}",
            pipeline_manager=process,
            command_queue=FORK.Queue(),
            responses_queue=FORK.Queue(),
            operation_lock=threading.Lock(),
            is_idle=False,
        )
        return managed, got_sigterm

    def kill_all(self) -> None:
        for process in self.started:
            if process.is_alive():
                process.kill()
            process.join(5)


@pytest.fixture
def children() -> Iterator[Children]:
    started = Children()
    yield started
    started.kill_all()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Any]:
    coral_inference.shutdown()
    context = coral_inference.init(runtime_config(tmp_path))
    assert context.patches["stream_manager"].status == "applied", context.patches
    app = app_module()
    before = set(app.PROCESSES_TABLE)
    yield context
    coral_inference.shutdown()
    for pipeline_id in set(app.PROCESSES_TABLE) - before:
        process = app.PROCESSES_TABLE.pop(pipeline_id).pipeline_manager
        process.kill()
        process.join(5)


def status_command(pipeline_id: str) -> dict[str, Any]:
    app = app_module()
    return {app.TYPE_KEY: app.CommandType.STATUS, app.PIPELINE_ID_KEY: pipeline_id}


def send(table: dict[str, Any], pipeline_id: str, command: dict[str, Any]) -> tuple[dict, float]:
    """``app.handle_command`` as the manager calls it; returns (response, seconds taken)."""
    started = time.monotonic()
    response = app_module().handle_command(
        processes_table=table, request_id=uuid.uuid4().hex, pipeline_id=pipeline_id, command=command
    )
    return response, time.monotonic() - started


def wait_until(condition: Callable[[], bool], timeout: float) -> float:
    """Poll ``condition``; return the seconds it took, fail after ``timeout``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        time.sleep(0.02)
    return time.monotonic() - started


def failed(response: dict[str, Any], error_type: str) -> bool:
    app = app_module()
    return (
        response[app.STATUS_KEY] == app.OperationStatus.FAILURE
        and response["error_type"] == error_type
    )


def test_applies_once_and_reverts_identity_equal(tmp_path: Path) -> None:
    coral_inference.shutdown()
    app = app_module()
    classes = [compat.import_object(HANDLER), compat.import_object(MANAGER)]
    originals = {name: getattr(app, name) for name in REPLACED}
    methods = {(cls, name): vars(cls)[name] for cls in classes for name in STARTERS}

    context = coral_inference.init(runtime_config(tmp_path))
    record = context.patches["stream_manager"]
    assert record.status == "applied", record.reason
    patched = {name: getattr(app, name) for name in REPLACED}
    assert all(patched[name] is not originals[name] for name in REPLACED)
    assert all(vars(cls)[name].__wrapped__ is m for (cls, name), m in methods.items())

    again = coral_inference.init(runtime_config(tmp_path))
    assert again.patches["stream_manager"].status == "applied"
    assert again.patches["stream_manager"].reason.startswith("already applied")
    assert all(getattr(app, name) is patched[name] for name in REPLACED)
    assert all(vars(cls)[name].__wrapped__ is m for (cls, name), m in methods.items())

    coral_inference.shutdown()
    assert all(getattr(app, name) is originals[name] for name in REPLACED)
    assert all(vars(cls)[name] is m for (cls, name), m in methods.items())


def test_silent_pipeline_answers_error_after_command_timeout(runtime, children) -> None:
    app = app_module()
    managed, _ = children.silent()
    table = {managed.pipeline_id: managed}

    response, took = send(table, managed.pipeline_id, status_command(managed.pipeline_id))
    assert failed(response, "operation_error"), response
    assert "did not answer within 2s" in response["public_error_message"]
    assert 2.0 <= took < 3.5, took

    # 0.54's handlers call it without the process: bounded all the same.
    started = time.monotonic()
    response = app.get_response_ignoring_thrash(
        responses_queue=managed.responses_queue, matching_request_id="never-sent"
    )
    assert failed(response, "operation_error")
    assert 2.0 <= time.monotonic() - started < 3.5

    # A dead pipeline process is noticed well before the deadline.
    managed.pipeline_manager.kill()
    managed.pipeline_manager.join(5)
    response, took = send(table, managed.pipeline_id, status_command(managed.pipeline_id))
    assert failed(response, "not_found"), response
    assert took < 1.5, took  # the deadline is 2 s


def test_answer_read_by_another_waiter_reaches_its_own(runtime) -> None:
    app = app_module()
    responses = FORK.Queue()
    first, second = {"status": "success", "n": 1}, {"status": "success", "n": 2}
    child = FORK.Process(target=answer, args=(responses, [("second", second), ("first", first)]))
    child.start()
    child.join(5)

    assert app.get_response_ignoring_thrash(responses, "first") == first
    started = time.monotonic()
    assert app.get_response_ignoring_thrash(responses, "second") == second  # not dropped
    assert time.monotonic() - started < 1.5  # not after the 2 s timeout


def test_second_operation_on_busy_pipeline_answers_busy(runtime, children) -> None:
    managed, _ = children.silent()
    table = {managed.pipeline_id: managed}
    first: list[dict] = []
    holder = threading.Thread(
        target=lambda: first.append(
            send(table, managed.pipeline_id, status_command(managed.pipeline_id))[0]
        )
    )
    holder.start()
    wait_until(managed.operation_lock.locked, 5)

    response, took = send(table, managed.pipeline_id, status_command(managed.pipeline_id))
    assert failed(response, "operation_error"), response
    assert "busy" in response["public_error_message"]
    assert 0.3 <= took < 1.5, took  # the lock timeout, not the 2 s command timeout

    holder.join(5)
    assert failed(first[0], "operation_error")
    assert not managed.operation_lock.locked()


def test_join_kills_a_pipeline_process_after_the_grace_period(runtime, children) -> None:
    app = app_module()
    managed, _ = children.silent(ignore_sigterm=True)
    table = {managed.pipeline_id: managed}

    started = time.monotonic()
    app.join_inference_pipeline(processes_table=table, pipeline_id=managed.pipeline_id)
    assert 0.5 <= time.monotonic() - started < 3.0
    assert managed.pipeline_manager.exitcode == -signal.SIGKILL
    assert table == {}


def test_termination_handler_terminates_then_kills_every_pipeline(runtime, children) -> None:
    app = app_module()
    stubborn, got_sigterm = children.silent(ignore_sigterm=True)
    polite, _ = children.silent()
    table = {p.pipeline_id: p for p in (stubborn, polite)}

    started = time.monotonic()
    with pytest.raises(SystemExit) as exit_info:
        app.execute_termination(signal.SIGTERM, None, processes_table=table)
    assert exit_info.value.code == 0
    assert 0.5 <= time.monotonic() - started < 2.0  # one grace period for all pipelines
    assert got_sigterm.is_set()
    assert stubborn.pipeline_manager.exitcode == -signal.SIGKILL
    assert polite.pipeline_manager.exitcode == -signal.SIGTERM


class MJPEGCamera:
    """A network camera on 127.0.0.1: an endless multipart MJPEG stream at 20 fps."""

    def __init__(self) -> None:
        jpeg = cv2.imencode(".jpg", np.full((120, 160, 3), 90, np.uint8))[1].tobytes()
        part = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
        part %= (len(jpeg), jpeg)
        stopped = threading.Event()

        class Stream(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not stopped.wait(0.05):
                        self.wfile.write(part)
                except OSError:
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.stopped = stopped
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Stream)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def camera() -> Iterator[str]:
    stream = MJPEGCamera()
    yield stream.url
    stream.close()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A short video file: its source ends within a second or so."""
    return write_plain_video(tmp_path / "source.avi", frames=40, fps=20, step=5)


def request(command: dict[str, Any]) -> dict[str, Any]:
    """One request through the manager's own handler, as its TCP server would pass it."""
    app = app_module()
    options: dict[str, Any] = {
        "processes_table": app.PROCESSES_TABLE,
        **pipeline_host_option(app.InferencePipelinesManagerHandler),
    }
    client, server = socket.socketpair()
    with client, server:
        payload = json.dumps(command).encode()
        client.sendall(len(payload).to_bytes(app.HEADER_SIZE, "big") + payload)
        app.InferencePipelinesManagerHandler(server, ("127.0.0.1", 0), None, **options)
        return app.receive_socket_data(client, app.HEADER_SIZE, app.SOCKET_BUFFER_SIZE)


def start_pipeline(video_reference: str) -> str:
    """INIT a step-less workflow pipeline on ``video_reference``; its pipeline id."""
    answer = request(
        {
            "type": "init",
            "video_configuration": {
                "type": "VideoConfiguration",
                "video_reference": video_reference,
            },
            "processing_configuration": {
                "type": "WorkflowConfiguration",
                "workflow_specification": WORKFLOW,
            },
        }
    )
    # Starting may take longer than the 2 s command timeout, not the 60 s start timeout.
    assert answer["response"]["status"] == "success", answer
    return answer["pipeline_id"]


def test_health_checks_keep_answering_pipeline_and_kill_stuck_one(
    runtime, children, camera: str, tmp_path: Path
) -> None:
    app = app_module()
    table = app.PROCESSES_TABLE
    pipeline_id = start_pipeline(camera)
    real = table[pipeline_id].pipeline_manager
    stuck, got_sigterm = children.silent(ignore_sigterm=True)
    table[stuck.pipeline_id] = stuck
    health = threading.Thread(target=app.check_process_health, daemon=True)
    health.start()

    took = wait_until(lambda: not stuck.pipeline_manager.is_alive(), 10)
    # two failed checks of 2 s each, SIGTERM ignored for the 0.5 s grace, then SIGKILL
    assert 4.5 <= took < 9.5, took
    assert got_sigterm.is_set()
    assert stuck.pipeline_manager.exitcode == -signal.SIGKILL
    assert stuck.pipeline_id not in table

    # The answering pipeline passed the same checks and still works.
    assert real.is_alive() and pipeline_id in table
    status = request({"type": "status", "pipeline_id": pipeline_id})
    assert status["response"]["status"] == "success", status
    stopped = request({"type": "terminate", "pipeline_id": pipeline_id})
    assert stopped["response"]["status"] == "success", stopped
    assert pipeline_id not in table
    assert real.exitcode == 0

    coral_inference.shutdown()
    health.join(2)
    assert not health.is_alive()

    # The sink patches applied in this process reached the forked pipeline process.
    recordings = list((tmp_path / "recordings" / pipeline_id).rglob("*.mp4"))
    assert len(recordings) == 1


def test_start_on_a_silent_pipeline_is_bounded_and_not_health_checked(
    runtime, children, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_module()
    limits = {**LIMITS, "command_timeout_seconds": 0.5, "start_timeout_seconds": 2.0}
    config = runtime_config(tmp_path)
    config["services"]["stream_manager"] = {**limits, "failure_budget": 1}
    assert coral_inference.init(config).patches["stream_manager"].status == "applied"
    stuck, _ = children.silent(ignore_sigterm=True)
    stuck.is_idle = True  # a warm pipeline process: the next INIT takes it
    app.PROCESSES_TABLE[stuck.pipeline_id] = stuck
    answers: list[dict] = []
    init = {"type": "init", "video_configuration": {}, "processing_configuration": {}}

    starter = threading.Thread(target=lambda: answers.append(request(init)))
    started, started_wall = time.monotonic(), time.time()
    starter.start()
    wait_until(lambda: not stuck.is_idle, 5)
    health = threading.Thread(target=app.check_process_health, daemon=True)
    health.start()

    starter.join(5)
    assert answers[0]["pipeline_id"] == stuck.pipeline_id
    assert answers[0]["response"]["status"] == "failure"
    assert "did not answer within 2s" in answers[0]["response"]["public_error_message"]
    assert 2.0 <= time.monotonic() - started < 3.5

    # Then it is checked: one 0.5 s timeout exhausts the budget, 0.5 s grace, SIGKILL.
    took = wait_until(lambda: not stuck.pipeline_manager.is_alive(), 5)
    assert took < 3.5, took
    assert stuck.pipeline_id not in app.PROCESSES_TABLE
    # Never checked while it was starting: the start's wait began after ``started_wall`` and
    # lasted 2 s, so a check that honours it fails no earlier than that (one that ignored it
    # would have failed ~0.5 s after the health thread started). Log times, not the test
    # thread's reading of liveness, which a loaded machine can delay past the kill.
    (failure,) = [r for r in caplog.records if r.getMessage().startswith("health check 1/1")]
    assert failure.created >= started_wall + 2.0, failure.created - started_wall


def test_health_checks_stop_a_pipeline_whose_video_ended(runtime, video: Path, tmp_path) -> None:
    # A real pipeline process finishing on its own: give it a realistic grace (the default's
    # order), not the 0.5 s the stuck-process tests use; inference 1.x on a loaded 2-core
    # machine takes longer than that to join its threads and close its sinks.
    config = runtime_config(tmp_path)
    config["services"]["stream_manager"] = {**LIMITS, "termination_grace_seconds": 10.0}
    assert coral_inference.init(config).patches["stream_manager"].status == "applied"
    app = app_module()
    pipeline_id = start_pipeline(str(video))
    real = app.PROCESSES_TABLE[pipeline_id].pipeline_manager
    health = threading.Thread(target=app.check_process_health, daemon=True)
    health.start()

    wait_until(lambda: pipeline_id not in app.PROCESSES_TABLE and not real.is_alive(), 60)
    assert real.exitcode == 0


def test_reapplied_patch_takes_over_the_running_health_loop(tmp_path: Path) -> None:
    coral_inference.shutdown()
    app = app_module()
    coral_inference.init(runtime_config(tmp_path))
    first = app.check_process_health
    health = threading.Thread(target=app.check_process_health, daemon=True)
    health.start()
    config = runtime_config(tmp_path)
    config["services"]["stream_manager"] = {**LIMITS, "failure_budget": 5}
    try:
        context = coral_inference.init(config)
        assert context.patches["stream_manager"].status == "applied"
        assert app.check_process_health is not first
        assert app.check_process_health.__self__.limits.failure_budget == 5
        time.sleep(3 * LIMITS["health_check_seconds"])
        assert health.is_alive()  # the first guard's loop handed over to the second's
    finally:
        coral_inference.shutdown()
    health.join(2)
    assert not health.is_alive()
