"""Live WebRTC preview of a running pipeline, served over HTTP from a background thread.

``GET /`` is a page that plays the preview in the browser; ``POST /offer`` takes the browser's
SDP offer (``{"sdp": ..., "type": "offer"}``) and answers with the server's. Every viewer gets
its own peer connection and :class:`~coral_inference.app.preview_track.RingVideoTrack`. aiortc does
not trickle ICE, so the page sends its offer once candidate gathering is complete.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcicetransport import parse_stun_turn_uri

from coral_inference.app.listen import cannot_listen
from coral_inference.app.preview_track import RingVideoTrack

if TYPE_CHECKING:
    from coral_inference.services.ring import FrameRing

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>coral preview</title>
<style>
  body { margin: 0; background: #111; color: #ccc; font: 14px sans-serif; }
  video { display: block; width: 100vw; height: calc(100vh - 2em); object-fit: contain; }
  #status { height: 2em; line-height: 2em; padding: 0 0.5em; }
</style>
</head>
<body>
<video id="video" autoplay muted playsinline></video>
<div id="status">connecting</div>
<script>
const video = document.getElementById("video");
const status = document.getElementById("status");

function show(state) {
  status.textContent = state;
  document.title = state;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") resolve();
    });
  });
}

async function connect() {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.ontrack = (event) => { video.srcObject = new MediaStream([event.track]); };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState !== "connected") show(pc.connectionState);
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  const response = await fetch("/offer", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  await pc.setRemoteDescription(answer);
}

video.addEventListener("playing", () => show("playing"));
connect().catch((error) => show("error: " + error.message));
</script>
</body>
</html>
"""


class PreviewError(RuntimeError):
    """The preview server could not start (address in use, unknown host...)."""


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


def ice_server(url: str) -> RTCIceServer:
    """A STUN/TURN URL as an RTCIceServer; TURN credentials go in it as
    ``turn:USER:PASSWORD@HOST[:PORT][?transport=tcp]``."""
    scheme, _, rest = url.partition(":")
    username = credential = None
    if "@" in rest:
        login, _, rest = rest.rpartition("@")
        username, _, credential = login.partition(":")
    bare = f"{scheme}:{rest}"
    try:
        parse_stun_turn_uri(bare)
    except ValueError as error:
        raise ValueError(f"ICE server {url!r} is not a stun:/turn: URL ({error})") from None
    return RTCIceServer(urls=bare, username=username, credential=credential)


class PreviewServer:
    """Serves the live preview of pipeline ``pipeline_id`` on ``host:port``.

    ``start()`` returns once the port is bound; the server and all peer connections run on an
    asyncio loop in a daemon thread until ``stop()``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        pipeline_id: str,
        ice_servers: list[str] | tuple[str, ...] = (),
        find_ring: Callable[[str], FrameRing | None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.pipeline_id = pipeline_id
        #: Where frames come from (default: the running runtime's ``services.rings``).
        self.find_ring = find_ring
        self.ice_servers = [ice_server(url) for url in ice_servers]
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._peers: dict[RTCPeerConnection, str] = {}

    @classmethod
    def from_address(
        cls,
        address: str,
        pipeline_id: str,
        config: Any,
        find_ring: Callable[[str], FrameRing | None] | None = None,
    ) -> PreviewServer:
        """A server for ``HOST:PORT`` using ``services.webrtc.ice_servers`` from ``config``."""
        host, port = parse_address(address)
        ice = config.get("services.webrtc.ice_servers") or []
        return cls(host, port, pipeline_id, ice, find_ring)

    @property
    def url(self) -> str:
        """The page's URL (with the bound port once started on port 0)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def viewers(self) -> int:
        """Peer connections currently open."""
        return len(self._peers)

    def start(self) -> None:
        """Bind the port and serve in a background thread; raises PreviewError if it can't."""
        with self._lock:
            if self._thread is not None:
                raise PreviewError("the preview server is already started")
            ready: concurrent.futures.Future[int] = concurrent.futures.Future()
            thread = threading.Thread(
                target=asyncio.run,
                args=(self._serve(ready),),
                name=f"coral-preview-{self.port}",
                daemon=True,
            )
            thread.start()
            try:
                self.port = ready.result(timeout=START_TIMEOUT)
            except (OSError, concurrent.futures.TimeoutError) as error:
                self._signal_stop()
                thread.join(STOP_TIMEOUT)
                raise PreviewError(cannot_listen(self.host, self.port, error)) from error
            self._thread = thread
        log.info("preview of %s on %s", self.pipeline_id, self.url)

    def stop(self) -> None:
        """Close every peer connection and the HTTP server; safe to call more than once."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._signal_stop()
            thread.join(STOP_TIMEOUT)
        if thread.is_alive():
            log.warning("preview server did not stop within %.0f s", STOP_TIMEOUT)
        else:
            log.info("preview on %s stopped", self.url)

    def _signal_stop(self) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop closed in between
                pass

    async def _serve(self, ready: concurrent.futures.Future[int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_post("/offer", self._offer)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except Exception as error:  # noqa: BLE001 - start() reports it in the caller's thread
            await runner.cleanup()
            ready.set_exception(error)
            return
        ready.set_result(runner.addresses[0][1])
        try:
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            closing = [
                asyncio.ensure_future(self._close(pc, "server stopped")) for pc in list(self._peers)
            ]
            if closing:
                await asyncio.wait(closing, timeout=STOP_TIMEOUT / 2)

    async def _page(self, _: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def _offer(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("sdp"), str):
            return _error(400, 'expected {"sdp": "...", "type": "offer"}')
        if body.get("type") != "offer":
            return _error(400, f'"type" must be "offer", got {body.get("type")!r}')
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers))
        viewer = f"{request.remote} #{id(pc):x}"
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
            if not any(t.kind == "video" for t in pc.getTransceivers()):
                await pc.close()
                return _error(400, "the offer has no video section")
            pc.addTrack(RingVideoTrack(self.pipeline_id, self.find_ring))
            await pc.setLocalDescription(await pc.createAnswer())
        except ValueError as error:
            await pc.close()
            return _error(400, f"invalid offer: {error}")
        except BaseException:
            await pc.close()
            raise
        self._peers[pc] = viewer
        self._watch(pc)
        answer = pc.localDescription
        return web.json_response({"sdp": answer.sdp, "type": answer.type})

    def _watch(self, pc: RTCPeerConnection) -> None:
        @pc.on("connectionstatechange")
        async def on_state() -> None:
            state = pc.connectionState
            if state == "connected" and pc in self._peers:
                log.info("preview viewer %s connected (%d open)", self._peers[pc], len(self._peers))
            elif state in ("failed", "closed"):
                await self._close(pc, f"connection {state}")

    async def _close(self, pc: RTCPeerConnection, reason: str) -> None:
        viewer = self._peers.pop(pc, None)
        if viewer is None:
            return
        log.info("preview viewer %s disconnected: %s (%d open)", viewer, reason, len(self._peers))
        for sender in pc.getSenders():
            if sender.track is not None:
                sender.track.stop()
        await pc.close()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
