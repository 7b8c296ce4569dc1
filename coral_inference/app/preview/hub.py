"""The preview hub: every viewer's WebRTC peer connection, for ``coral serve``
(``POST /inference_pipelines/{id}/offer``) and ``coral run --preview`` (``POST /offer``).

Every peer connection runs on the HTTP server's own asyncio loop (no thread or loop per offer).
One :class:`PipelineFeed` task per watched pipeline polls its
:class:`~coral_inference.app.preview.source.FrameSource`, draws the boxes once per new frame and
hands the image to each viewer's bounded queue; a full queue drops that viewer's oldest frame,
so a viewer that stops reading only loses its own frames and never slows the pipeline (which
never waits on the source) or the other viewers. The feed task ends with its last viewer. Peers
close when the viewer leaves, the pipeline is deleted, or the server stops. Offers are limited
in size, in number (all together and per pipeline), and must connect within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from coral_inference.app.preview.ice import ice_server
from coral_inference.app.preview.images import annotate, placeholder
from coral_inference.app.preview.source import FrameSource

if TYPE_CHECKING:
    from coral_inference.app.serve.settings import ServeSettings

log = logging.getLogger(__name__)

CLOCK_RATE = 90_000
TIME_BASE = fractions.Fraction(1, CLOCK_RATE)
POLL_SECONDS = 0.01
IDLE_SECONDS = 0.5
CLOSE_TIMEOUT = 5.0


class OfferError(Exception):
    """The offer cannot be answered: malformed (400), too large (413), too many viewers
    (429)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ViewerTrack(MediaStreamTrack):
    """One viewer's video: the images its queue receives, the last one repeated while idle."""

    kind = "video"

    def __init__(self, pipeline_id: str, queue_size: int) -> None:
        super().__init__()
        self.queue: asyncio.Queue[np.ndarray] = asyncio.Queue(queue_size)
        self._image = placeholder(f"waiting for pipeline {pipeline_id}")
        self._start: float | None = None
        self._pts = -1

    def offer(self, image: np.ndarray) -> None:
        """Queue ``image``, dropping this viewer's oldest one when its queue is full."""
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait(image)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        with contextlib.suppress(asyncio.TimeoutError):
            self._image = await asyncio.wait_for(self.queue.get(), IDLE_SECONDS)
        if self.readyState != "live":
            raise MediaStreamError
        frame = av.VideoFrame.from_ndarray(self._image, format="bgr24")
        now = time.monotonic()
        self._start = now if self._start is None else self._start
        self._pts = max(self._pts + 1, int((now - self._start) * CLOCK_RATE))
        frame.pts, frame.time_base = self._pts, TIME_BASE
        return frame


class PipelineFeed:
    """Polls one pipeline's frame source and fans each new annotated frame out to its
    viewers."""

    def __init__(self, pipeline_id: str, source: FrameSource) -> None:
        self.pipeline_id = pipeline_id
        self.source = source
        self.viewers: set[ViewerTrack] = set()
        self.task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        """Start the feed task on the running loop unless it runs."""
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(
                self._run(), name=f"coral-feed-{self.pipeline_id}"
            )

    async def _run(self) -> None:
        sequence = 0
        while self.viewers:
            frame = self.source.next_frame(sequence)
            if frame is None:
                await asyncio.sleep(POLL_SECONDS)
                continue
            sequence = frame.sequence
            image = await asyncio.to_thread(annotate, frame)
            for viewer in list(self.viewers):
                viewer.offer(image)


class PreviewHub:
    """All preview peers of a server, on the loop that calls :meth:`answer`; the frames of
    pipeline ``P`` come from ``source_of(P)`` (called when its first viewer arrives)."""

    def __init__(
        self,
        source_of: Callable[[str], FrameSource],
        ice_servers: tuple[str, ...] = (),
        queue_size: int = 2,
        max_viewers: int = 16,
        max_per_pipeline: int = 4,
        connect_seconds: float = 30.0,
        sdp_limit: int = 32768,
    ) -> None:
        self.source_of = source_of
        self.ice_servers = [ice_server(url) for url in ice_servers]
        self.queue_size = queue_size
        self.max_viewers = max_viewers
        self.max_per_pipeline = max_per_pipeline
        self.connect_seconds = connect_seconds
        self.sdp_limit = sdp_limit
        self.feeds: dict[str, PipelineFeed] = {}
        self.peers: dict[RTCPeerConnection, tuple[str, ViewerTrack]] = {}
        self._deadlines: dict[RTCPeerConnection, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task[None]] = set()

    @classmethod
    def from_settings(
        cls, source_of: Callable[[str], FrameSource], settings: ServeSettings
    ) -> PreviewHub:
        """A hub with the viewer limits and ICE servers of ``settings``."""
        return cls(
            source_of,
            settings.ice_servers,
            settings.viewer_queue,
            settings.max_viewers,
            settings.max_viewers_per_pipeline,
            settings.viewer_connect_seconds,
            settings.sdp_limit_bytes,
        )

    @property
    def viewers(self) -> int:
        """Peer connections open (or being opened)."""
        return len(self.peers)

    async def answer(self, pipeline_id: str, body: Any) -> dict[str, str]:
        """The answer to a viewer's ``{"sdp", "type": "offer"}``; OfferError if malformed."""
        if not isinstance(body, dict) or not isinstance(body.get("sdp"), str):
            raise OfferError('expected {"sdp": "...", "type": "offer"}')
        if body.get("type") != "offer":
            raise OfferError(f'"type" must be "offer", got {body.get("type")!r}')
        if len(body["sdp"]) > self.sdp_limit:
            raise OfferError(f"the offer's SDP is over {self.sdp_limit} bytes", 413)
        if len(self.peers) >= self.max_viewers:
            raise OfferError(f"too many viewers ({self.max_viewers} open)", 429)
        watching = sum(1 for owner, _ in self.peers.values() if owner == pipeline_id)
        if watching >= self.max_per_pipeline:
            raise OfferError(
                f"too many viewers of this pipeline ({self.max_per_pipeline} open)", 429
            )
        pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers))
        track = ViewerTrack(pipeline_id, self.queue_size)
        # counted from here, before the first await: concurrent offers cannot pass the limits
        self.peers[pc] = (pipeline_id, track)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="offer"))
            if not any(t.kind == "video" for t in pc.getTransceivers()):
                raise OfferError("the offer has no video section")
            pc.addTrack(track)
            await pc.setLocalDescription(await pc.createAnswer())
        except OfferError:
            self.peers.pop(pc, None)
            await pc.close()
            raise
        except Exception as error:  # noqa: BLE001 - aiortc raises many kinds on bad SDP
            self.peers.pop(pc, None)
            await pc.close()
            raise OfferError(f"invalid offer: {error or type(error).__name__}") from None
        feed = self.feeds.get(pipeline_id)
        if feed is None:
            feed = self.feeds[pipeline_id] = PipelineFeed(pipeline_id, self.source_of(pipeline_id))
        feed.viewers.add(track)
        feed.ensure_running()

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected" and pc in self.peers:
                log.info("preview viewer of %s connected (%d open)", pipeline_id, len(self.peers))
            elif pc.connectionState in ("failed", "closed"):
                await self.close(pc, f"connection {pc.connectionState}")

        self._deadlines[pc] = asyncio.get_running_loop().call_later(
            self.connect_seconds, self._close_if_unconnected, pc
        )
        log.info("preview viewer of %s joined (%d open)", pipeline_id, len(self.peers))
        answer = pc.localDescription
        return {"sdp": answer.sdp, "type": answer.type}

    def _close_if_unconnected(self, pc: RTCPeerConnection) -> None:
        if pc in self.peers and pc.connectionState != "connected":
            reason = f"not connected within {self.connect_seconds:g} s"
            log.warning("preview viewer of %s closed: %s", self.peers[pc][0], reason)
            task = asyncio.get_running_loop().create_task(self.close(pc, reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def close(self, pc: RTCPeerConnection, reason: str) -> None:
        """Close one viewer's connection (and its pipeline's feed after its last viewer)."""
        entry = self.peers.pop(pc, None)
        deadline = self._deadlines.pop(pc, None)
        if deadline is not None:
            deadline.cancel()
        if entry is None:
            return
        pipeline_id, track = entry
        feed = self.feeds.get(pipeline_id)
        if feed is not None:
            feed.viewers.discard(track)
            if not feed.viewers:
                self.feeds.pop(pipeline_id, None)
                if feed.task is not None:
                    feed.task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await feed.task
        track.stop()
        await pc.close()
        log.info("preview viewer of %s left: %s (%d open)", pipeline_id, reason, len(self.peers))

    async def close_pipeline(self, pipeline_id: str, reason: str) -> None:
        """Close every viewer of ``pipeline_id``."""
        peers = [pc for pc, (owner, _) in self.peers.items() if owner == pipeline_id]
        await self._close_many(peers, reason)

    async def close_all(self, reason: str = "server stopped") -> None:
        """Close every viewer."""
        await self._close_many(list(self.peers), reason)

    async def _close_many(self, peers: list[RTCPeerConnection], reason: str) -> None:
        if peers:
            await asyncio.wait(
                [asyncio.ensure_future(self.close(pc, reason)) for pc in peers],
                timeout=CLOSE_TIMEOUT,
            )
