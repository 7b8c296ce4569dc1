"""``coral run --preview HOST:PORT``: the preview hub behind a small HTTP server of its own.

``GET /`` is the page (:mod:`~coral_inference.app.preview.page`), ``POST /offer`` takes the
browser's SDP offer and answers it through :class:`~coral_inference.app.preview.hub.PreviewHub`,
fed by the ``buffer_sink`` ring of the run's pipeline. uvicorn serves it on an asyncio loop in a
daemon thread; ``coral serve``'s request guard stands in front (Host header, Origin, JSON body
and its size), without a token: so the preview listens on loopback addresses only, unless
``services.webrtc.preview_allow_remote`` says otherwise. The viewer limits, allowed hosts and
origins are ``services.serve``'s.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from coral_inference.app.listen import CannotListen, bind, cannot_listen, quiet_server, shown_host
from coral_inference.app.preview.hub import OfferError, PreviewHub
from coral_inference.app.preview.page import CSP, PAGE
from coral_inference.app.preview.source import RingSource
from coral_inference.app.serve.security import ASGIApp, Guard, HostPolicy
from coral_inference.app.serve.settings import ServeSettings, is_loopback

if TYPE_CHECKING:
    from coral_inference.services.ring import FrameRing

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
#: The config key that lets the preview listen on a non-loopback address.
ALLOW_REMOTE = "services.webrtc.preview_allow_remote"


class PreviewError(RuntimeError):
    """The preview server could not start (address in use or not allowed, unknown host...)."""


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT`` as (host, port); port 0 picks a free one."""
    host, separator, port_text = address.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        host = ""  # an IPv6 address needs brackets
    if (
        not separator
        or not host
        or not port_text.isascii()
        or not port_text.isdigit()
        or int(port_text) > 65535
    ):
        raise ValueError(
            f"preview address {address!r} is not HOST:PORT (e.g. 127.0.0.1:8080 or [::1]:8080)"
        )
    return host, int(port_text)


def check_exposure(host: str, allow_remote: bool) -> None:
    """PreviewError for a non-loopback ``host`` unless ``allow_remote``: the preview has no
    token, so whoever reaches the address could watch."""
    if not allow_remote and not is_loopback(host):
        raise PreviewError(
            f"{shown_host(host)} is not a loopback address, and the preview has no token: "
            f"anyone who reaches it could watch. Listen on 127.0.0.1 (and tunnel to it, e.g. "
            f"ssh -L), or --set {ALLOW_REMOTE}=true to serve it there on purpose"
        )


def preview_app(hub: PreviewHub, pipeline_id: str) -> ASGIApp:
    """The page and the offer route for one pipeline, as an ASGI app."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    async def page(_: Request) -> Response:
        return HTMLResponse(PAGE, headers={"content-security-policy": CSP})

    async def offer(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "the body is not JSON"}, status_code=400)
        try:
            return JSONResponse(await hub.answer(pipeline_id, body))
        except OfferError as error:
            return JSONResponse({"error": str(error)}, status_code=error.status)

    return Starlette(
        routes=[Route("/", page, methods=["GET"]), Route("/offer", offer, methods=["POST"])]
    )


class PreviewServer:
    """Serves the live preview of pipeline ``pipeline_id`` on ``host:port``; its frames come
    from ``find_ring(pipeline_id)`` (the runtime's ``services.rings.get``).

    ``start()`` returns once the server accepts connections; it and every peer connection run
    on an asyncio loop in a daemon thread until ``stop()``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        pipeline_id: str,
        find_ring: Callable[[str], FrameRing | None],
        settings: ServeSettings | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.pipeline_id = pipeline_id
        self.settings = settings or ServeSettings()
        self.hub = PreviewHub.from_settings(lambda p: RingSource(p, find_ring), self.settings)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._server: Any = None

    @classmethod
    def from_config(
        cls,
        address: str,
        pipeline_id: str,
        config: Any,
        find_ring: Callable[[str], FrameRing | None],
    ) -> PreviewServer:
        """A server for ``HOST:PORT`` with the settings of ``config``; PreviewError for a
        non-loopback host the config does not allow, ValueError for a malformed address."""
        host, port = parse_address(address)
        check_exposure(host, bool(config.get(ALLOW_REMOTE)))
        return cls(host, port, pipeline_id, find_ring, ServeSettings.from_config(config))

    @property
    def url(self) -> str:
        """The page's URL (with the bound port once started on port 0)."""
        return f"http://{shown_host(self.host)}:{self.port}/"

    @property
    def viewers(self) -> int:
        """Peer connections currently open."""
        return self.hub.viewers

    def start(self) -> None:
        """Bind the port and serve in a background thread; PreviewError if it can't."""
        import uvicorn

        with self._lock:
            if self._thread is not None:
                raise PreviewError("the preview server is already started")
            try:
                sock = bind(self.host, self.port)
            except CannotListen as error:
                raise PreviewError(str(error)) from None
            self.port = sock.getsockname()[1]
            server = quiet_server(
                uvicorn.Config(
                    self._guarded(),
                    log_level="warning",
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                    timeout_graceful_shutdown=1,
                )
            )
            thread = threading.Thread(
                target=asyncio.run,
                args=(self._serve(server, sock),),
                name=f"coral-preview-{self.port}",
                daemon=True,
            )
            thread.start()
            deadline = time.monotonic() + START_TIMEOUT
            while not server.started and thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not server.started:
                server.should_exit = True
                thread.join(STOP_TIMEOUT)
                raise PreviewError(cannot_listen(self.host, self.port, "the server did not start"))
            self._thread, self._server = thread, server
        log.info("preview of %s on %s", self.pipeline_id, self.url)

    def stop(self) -> None:
        """Close every peer connection and the HTTP server; safe to call more than once."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._server.should_exit = True
            thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            log.warning("preview server did not stop within %.0f s", STOP_TIMEOUT)
        else:
            log.info("preview on %s stopped", self.url)

    def _guarded(self) -> Guard:
        """The app behind ``coral serve``'s guard, without a token."""
        settings = self.settings
        return Guard(
            preview_app(self.hub, self.pipeline_id),
            token=None,
            port=self.port,
            hosts=HostPolicy.for_server(self.host, settings.allowed_hosts),
            allowed_origins=settings.allowed_origins,
            body_limit=settings.body_limit_bytes,
            image_body_limit=settings.body_limit_bytes,
        )

    async def _serve(self, server: Any, sock: socket.socket) -> None:
        """Serve until ``should_exit``, then close the viewers (on this loop, where they live)."""
        try:
            await server.serve(sockets=[sock])
        finally:
            await self.hub.close_all("server stopped")
            sock.close()
