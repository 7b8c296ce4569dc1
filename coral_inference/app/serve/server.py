"""``coral serve``'s life cycle: init the runtime, bind, serve, and stop cleanly on a signal."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
import warnings
from typing import Any

from coral_inference.app.listen import bind, quiet_server, shown_host
from coral_inference.app.serve.settings import ServeSettings

log = logging.getLogger(__name__)

#: inference's HTTP API module (its import warns about pydantic field names).
INFERENCE_HTTP_API = "inference.core.interfaces.http.http_api"


def announce(settings: ServeSettings, address: str) -> None:
    """The start-up lines on stderr: the address, and where the token came from (the token
    itself only when it was just generated: printed this once)."""
    if settings.token and settings.token_origin.startswith("generated"):
        print(
            f"coral serve token (saved in {settings.token_file}): {settings.token}", file=sys.stderr
        )
    elif settings.token:
        print(f"coral serve token: {settings.token_origin}", file=sys.stderr)
    print(f"coral serve on {address}", file=sys.stderr, flush=True)


def serve(config: Any, settings: ServeSettings) -> None:
    """Run until SIGINT/SIGTERM; returns after pipelines and patches are stopped."""
    import uvicorn

    import coral_inference
    from coral_inference.app.inference_import import import_inference_with_logs_on_stderr
    from coral_inference.app.serve.credentials import mask_log_records
    from coral_inference.app.serve.hardening import (
        check_inference_environment,
        harden_environment,
    )

    # files and folders this process and its pipelines make (state, metrics, recordings,
    # token) are its user's alone
    os.umask(0o077)
    settings = settings.with_token()
    sock = bind(settings.host, settings.port)
    harden_environment(settings)
    mask_log_records()
    # inference's import-time warnings (pydantic field names, optional model families) and the
    # "experimental" warning every workflow pipeline process gives say nothing to a user here
    import_inference_with_logs_on_stderr(also=(INFERENCE_HTTP_API,))
    warnings.filterwarnings("ignore", message="init_with_workflow is experimental")
    context = coral_inference.init(config)
    app = None
    try:
        from coral_inference.app.serve.app import ServeApp

        check_inference_environment(settings)
        app = ServeApp(context, settings, sock.getsockname()[1])
        uv_config = uvicorn.Config(
            app.asgi,
            log_level="warning",
            timeout_graceful_shutdown=max(1, int(settings.grace_seconds / 2)),
            lifespan="on",
        )
        server = quiet_server(uv_config)

        def stop_serving(number: int, _: Any) -> None:
            log.info("signal %d: stopping", number)
            server.should_exit = True

        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, stop_serving)

        async def main() -> None:
            if settings.restore:
                restoring = asyncio.get_running_loop().create_task(app.restore())
            else:
                restoring = None
            host, port = sock.getsockname()[:2]
            announce(settings, f"http://{shown_host(host)}:{port}/")
            await server.serve(sockets=[sock])
            if restoring is not None and not restoring.done():
                restoring.cancel()
            await app.close_peers()

        asyncio.run(main())
    finally:
        started = time.monotonic()
        if app is not None:
            app.stop(settings.grace_seconds)
        coral_inference.shutdown()
        sock.close()
        log.info("stopped in %.1fs", time.monotonic() - started)
