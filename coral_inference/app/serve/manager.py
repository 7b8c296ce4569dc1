"""inference's stream manager run inside the ``coral serve`` process.

Upstream runs ``manager_app.app.start()`` as its own program: a single-threaded TCP server on
``STREAM_MANAGER_HOST:PORT`` plus health-check threads, with SIGINT/SIGTERM handlers that exit
the process. ``coral serve`` runs the same pieces (inference's request handler, processes
table and the patched health check) on threads of its own process, on a free loopback port, and
leaves the signals to the HTTP server; :meth:`StreamManagerHost.stop` ends every pipeline
process within the grace period instead. Pipeline processes are therefore forked from the
server, with the runtime's patches applied, and are its direct children.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import threading
from typing import Any

from coral_inference.patches.stream_manager import APP, stop_processes
from coral_inference.runtime import compat

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SOCKET_TIMEOUT = 5.0


def pipeline_host_option(handler: Any) -> dict[str, Any]:
    """inference 1.x's handler also takes the pipeline host (``host_descriptor``) that
    ``import inference`` installs as the process default; 0.54's takes none."""
    if "host_descriptor" not in inspect.signature(handler).parameters:
        return {}
    host = compat.import_object(
        "inference.core.interfaces.stream_manager.manager_app.host:get_default_host_descriptor"
    )
    return {"host_descriptor": host()}


class StreamManagerHost:
    """The stream manager's TCP server and health check on daemon threads of this process."""

    def __init__(self, grace: float = 5.0) -> None:
        self.grace = grace
        self.app: Any = compat.import_object(APP)
        self._server: Any = None
        self._threads: list[threading.Thread] = []

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def processes(self) -> dict[str, Any]:
        """inference's processes table: manager pipeline id -> ManagedInferencePipeline."""
        return self.app.PROCESSES_TABLE

    def start(self) -> int:
        """Bind a free loopback port, serve on it, point inference's HTTP API at it."""
        from inference.core.interfaces.stream_manager.manager_app.tcp_server import (
            RoboflowTCPServer,
        )

        app = self.app
        handler = functools.partial(
            app.InferencePipelinesManagerHandler,
            processes_table=app.PROCESSES_TABLE,
            **pipeline_host_option(app.InferencePipelinesManagerHandler),
        )
        self._server = RoboflowTCPServer(
            (LOOPBACK, 0), handler, socket_operations_timeout=SOCKET_TIMEOUT
        )
        os.environ["STREAM_MANAGER_HOST"] = LOOPBACK
        os.environ["STREAM_MANAGER_PORT"] = str(self.port)
        for name, target in (
            ("coral-stream-manager", self._server.serve_forever),
            ("coral-stream-health", app.check_process_health),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("stream manager on %s:%d", LOOPBACK, self.port)
        return self.port

    def is_alive(self, manager_id: str) -> bool:
        managed = self.processes.get(manager_id)
        return managed is not None and managed.pipeline_manager.is_alive()

    def retire(self, manager_id: str, managed: Any) -> None:
        """Take one pipeline out of the table and stop its process (killed after the grace)."""
        with self.app.PROCESSES_TABLE_LOCK:
            if self.app.PROCESSES_TABLE.get(manager_id) is managed:
                del self.app.PROCESSES_TABLE[manager_id]
        stop_processes([managed.pipeline_manager], self.grace)

    def stop(self, grace: float) -> None:
        """Stop accepting commands, then SIGTERM every pipeline process (they finish their
        recordings and metrics) and SIGKILL those still alive after ``grace`` seconds."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        app = self.app
        with app.PROCESSES_TABLE_LOCK:
            pipelines = list(app.PROCESSES_TABLE.values())
            app.PROCESSES_TABLE.clear()
        if pipelines:
            log.info("stopping %d pipeline process(es)", len(pipelines))
        stop_processes([p.pipeline_manager for p in pipelines], grace)
        for pipeline in pipelines:
            pipeline.command_queue.close()
            pipeline.responses_queue.close()
