"""``coral run --preview``'s server end to end: real HTTP on 127.0.0.1, real aiortc peers, a
real pipeline.

A real ``InferencePipeline`` (custom logic drawing one fixed box, on a synthetic video file) feeds
the ring of the real ``buffer_sink`` patch; aiortc clients play the preview as a browser would.
The server stands behind ``coral serve``'s guard: foreign Hosts and Origins are refused, and so
is a non-loopback address unless the config allows it. An optional test drives headless Chromium
against the page when ``chromium`` is installed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc")
pytest.importorskip("inference")

import cv2  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402
from chromium import Page, chromium, devtools  # noqa: E402
from webrtc_client import receive_frames  # noqa: E402

import coral_inference  # noqa: E402
from coral_inference.app.preview.images import PLACEHOLDER_SIZE  # noqa: E402
from coral_inference.app.preview.server import (  # noqa: E402
    PreviewError,
    PreviewServer,
    parse_address,
)
from coral_inference.patches.tap import pipeline_name  # noqa: E402
from coral_inference.runtime import current  # noqa: E402
from coral_inference.runtime.config import load_config  # noqa: E402
from coral_inference.services.annotation import class_color  # noqa: E402

pytestmark = pytest.mark.integration

FRAME_SIZE = (640, 480)
BOX = {"x": 320, "y": 240, "width": 300, "height": 200}  # xyxy (170, 140, 470, 340)
BACKGROUND = 40


def post_json(
    url: str, body: Any, raw: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data, {"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def http_status(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def runtime_ring(pipeline_id: str) -> Any:
    """The ring of ``pipeline_id`` in the runtime running now (None without one)."""
    context = current()
    return context.services.rings.get(pipeline_id) if context is not None else None


def preview_server(pipeline_id: str = "preview-test", port: int = 0) -> PreviewServer:
    return PreviewServer("127.0.0.1", port, pipeline_id, runtime_ring)


@pytest.fixture
def server() -> Iterator[PreviewServer]:
    preview = preview_server()
    preview.start()
    yield preview
    preview.stop()


@pytest.fixture
def video_file(tmp_path: Path) -> Path:
    """20 s of 640x480 at 15 fps: a grey field with a moving white dot."""
    path = tmp_path / "source.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, FRAME_SIZE)
    for i in range(300):
        image = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), BACKGROUND, np.uint8)
        cv2.circle(image, ((i * 7) % FRAME_SIZE[0], 60), 12, (255, 255, 255), -1)
        writer.write(image)
    writer.release()
    return path


@pytest.fixture
def coral_runtime() -> Iterator[None]:
    """The real runtime with only the buffer_sink patch applied."""
    coral_inference.init(
        {"plugins": {"only": ["buffer_sink"]}, "backends": {"auto_discover": False}}
    )
    yield
    coral_inference.shutdown()


def start_pipeline(pipeline_id: str, video: Path) -> Any:
    from inference import InferencePipeline

    box = {**BOX, "confidence": 0.9, "class": "thing", "class_id": 0}

    def one_box_each(frames: list[Any]) -> list[dict[str, Any]]:
        return [{"predictions": [box]} for _ in frames]

    with pipeline_name(pipeline_id):
        pipeline = InferencePipeline.init_with_custom_logic(
            video_reference=str(video), on_video_frame=one_box_each, max_fps=15
        )
    pipeline.start(use_main_thread=False)
    return pipeline


async def connect_viewer(url: str) -> tuple[RTCPeerConnection, Any]:
    """An aiortc peer that receives the preview, as the page does; returns (pc, track)."""
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc.on("track", track.set_result)
    await pc.setLocalDescription(await pc.createOffer())
    offer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
    status, answer = await asyncio.to_thread(post_json, url + "offer", offer)
    assert status == 200, answer
    assert answer["type"] == "answer"
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    return pc, await asyncio.wait_for(track, 10)


def assert_box_drawn(image: np.ndarray) -> None:
    """The box's bottom edge (y=340, clear of the label) shows the class colour."""
    band = image[336:345, 190:451].astype(int)
    distance = np.abs(band - np.array(class_color(0))).sum(axis=2).min(axis=0)
    assert np.median(distance) < 90, f"box colour not found at its edge: {np.median(distance)}"
    inside = image[200:280, 200:440].astype(int)
    assert np.abs(inside - BACKGROUND).mean() < 20, "the box interior is not the source frame"


def test_two_viewers_each_get_annotated_frames(
    coral_runtime: None, video_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="coral_inference.app.preview")
    preview = preview_server()
    preview.start()  # before the pipeline exists, as `coral run --preview` does
    pipeline = None

    async def scenario() -> list[list[np.ndarray]]:
        nonlocal pipeline
        viewers = [await connect_viewer(preview.url) for _ in range(2)]
        try:
            waiting = await asyncio.gather(
                *(receive_frames(track, 1, PLACEHOLDER_SIZE) for _, track in viewers)
            )
            assert all(len(frames) == 1 for frames in waiting)
            pipeline = await asyncio.to_thread(start_pipeline, "preview-test", video_file)
            return list(
                await asyncio.gather(
                    *(receive_frames(track, 10, FRAME_SIZE) for _, track in viewers)
                )
            )
        finally:
            for pc, _ in viewers:
                await pc.close()

    try:
        received = asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        if pipeline is not None:
            pipeline.terminate()
            pipeline.join()
        preview.stop()

    assert [len(frames) for frames in received] == [10, 10]
    for frames in received:
        assert frames[-1].shape == (FRAME_SIZE[1], FRAME_SIZE[0], 3)
        assert_box_drawn(frames[-1])
        dot_row = (slice(40, 80), slice(None))  # the moving dot: live frames, not repeats
        assert np.abs(frames[0][dot_row].astype(int) - frames[-1][dot_row]).max() > 100
    messages = [r.getMessage() for r in caplog.records]
    assert sum(" connected (" in m for m in messages) == 2, messages
    assert sum(" left: " in m for m in messages) == 2, messages
    assert preview.viewers == 0


def test_stop_closes_open_viewers(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="coral_inference.app.preview")
    preview = preview_server("no-such-pipeline")
    preview.start()

    async def scenario() -> tuple[float, str]:
        pc, track = await connect_viewer(preview.url)
        try:
            assert len(await receive_frames(track, 1, PLACEHOLDER_SIZE)) == 1
            assert preview.viewers == 1
            started = time.monotonic()
            await asyncio.to_thread(preview.stop)
            took = time.monotonic() - started
            for _ in range(50):
                if pc.connectionState != "connected":
                    break
                await asyncio.sleep(0.1)
            return took, pc.connectionState
        finally:
            await pc.close()

    took, client_state = asyncio.run(asyncio.wait_for(scenario(), 20))
    assert took < 5
    assert client_state == "closed"
    assert preview.viewers == 0
    assert any("left: server stopped" in r.getMessage() for r in caplog.records)


def test_page_and_error_responses(server: PreviewServer) -> None:
    with urllib.request.urlopen(server.url, timeout=10) as response:
        page = response.read().decode()
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
    assert "RTCPeerConnection" in page and "/offer" in page

    offer = server.url + "offer"
    for body, raw in [
        (None, b"{not json"),
        (["sdp", "offer"], None),
        ({"type": "offer"}, None),
        ({"sdp": "v=0\r\n", "type": "answer"}, None),
        ({"sdp": "v=0\r\n", "type": "offer"}, None),  # no video section
    ]:
        status, reply = post_json(offer, body, raw)
        assert status == 400, (body, raw, reply)
        assert isinstance(reply.get("error"), str) and reply["error"]

    assert http_status(server.url + "nothing-here") == 404
    assert http_status(offer, "GET") == 405
    assert http_status(server.url, "POST") == 405
    assert server.viewers == 0


def test_port_in_use_and_idempotent_stop() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PreviewError, match=rf"127\.0\.0\.1:{port}.*in use"):
            preview_server(port=port).start()

    preview = preview_server()
    preview.start()
    port = preview.port
    assert preview.url == f"http://127.0.0.1:{port}/"
    assert http_status(preview.url) == 200
    started = time.monotonic()
    preview.stop()
    preview.stop()
    assert time.monotonic() - started < 5
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(preview.url, timeout=5)
    again = preview_server(port=port)
    again.start()
    again.stop()


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:0", ("::1", 0)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["8080", ":8080", "::1:8080", "host:", "host:http", "h:70000"])
def test_parse_address_rejects(address: str) -> None:
    with pytest.raises(ValueError, match=repr(address).replace("[", r"\[")):
        parse_address(address)


def test_ice_servers_and_limits_from_config() -> None:
    config = load_config(
        overrides=[
            'services.webrtc.ice_servers=["stun:stun.example.org:3478", '
            '"turn:user:secret@turn.example.org?transport=tcp"]',
            "services.serve.max_viewers=3",
        ],
        env={},
    )
    preview = PreviewServer.from_config("[::1]:9000", "p", config, runtime_ring)
    assert preview.url == "http://[::1]:9000/"
    stun, turn = preview.hub.ice_servers
    assert (stun.urls, stun.username) == ("stun:stun.example.org:3478", None)
    assert (turn.urls, turn.username, turn.credential) == (
        "turn:turn.example.org?transport=tcp",
        "user",
        "secret",
    )
    assert preview.hub.max_viewers == 3
    bad = load_config(overrides=['services.webrtc.ice_servers=["http://nope"]'], env={})
    with pytest.raises(ValueError, match="http://nope"):
        PreviewServer.from_config("127.0.0.1:0", "p", bad, runtime_ring)


def test_non_loopback_address_needs_the_config_to_allow_it() -> None:
    with pytest.raises(PreviewError, match="not a loopback address.*preview_allow_remote"):
        PreviewServer.from_config("0.0.0.0:0", "p", load_config(env={}), runtime_ring)
    allowed = load_config(overrides=["services.webrtc.preview_allow_remote=true"], env={})
    assert PreviewServer.from_config("0.0.0.0:0", "p", allowed, runtime_ring).host == "0.0.0.0"
    assert PreviewServer.from_config("localhost:0", "p", load_config(env={}), runtime_ring)


def test_foreign_host_and_origin_are_refused(server: PreviewServer) -> None:
    """A DNS-rebinding page (another Host) and a cross-site page (another Origin) get 403; the
    page's own origin reaches the hub."""
    own = f"http://127.0.0.1:{server.port}"
    assert http_status(server.url, headers={"Host": "evil.example"}) == 403
    status, reply = post_json(
        server.url + "offer", {}, headers={"Host": f"evil.example:{server.port}"}
    )
    assert status == 403 and "Host" in reply["error"], reply
    status, reply = post_json(server.url + "offer", {}, headers={"Origin": "http://evil.example"})
    assert status == 403 and "origin" in reply["error"], reply
    status, reply = post_json(server.url + "offer", {}, headers={"Origin": own})
    assert status == 400 and "sdp" in reply["error"], reply  # the hub's own answer
    text_plain = urllib.request.Request(
        server.url + "offer", b"{}", {"Content-Type": "text/plain"}, method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(text_plain, timeout=10)
    assert refused.value.code == 415
    refused.value.close()
    with urllib.request.urlopen(server.url, timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
    assert "script-src 'sha256-" in policy and "unsafe-inline" not in policy
    assert server.viewers == 0


async def page_state(profile: Path, want: str, timeout: float) -> str:
    """Poll the page of the Chromium using ``profile`` for "TITLE WIDTHxHEIGHT" (the page's
    title, its video's size) until that is ``want``; the last state seen."""
    session, socket_ = await devtools(profile, timeout)
    try:
        page = Page(socket_)
        expression = "JSON.stringify(`${document.title} ${video.videoWidth}x${video.videoHeight}`)"
        deadline = time.monotonic() + timeout
        state = ""
        while state != want and time.monotonic() < deadline:
            state = await page.evaluate(expression) or state
            await asyncio.sleep(0.25)
        return state
    finally:
        await socket_.close()
        await session.close()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_headless_chromium_plays_the_page(
    coral_runtime: None, video_file: Path, server: PreviewServer, tmp_path: Path
) -> None:
    profile = tmp_path / "chromium"
    want = f"playing {FRAME_SIZE[0]}x{FRAME_SIZE[1]}"  # the pipeline's frames, not the placeholder
    pipeline = None
    try:
        with chromium(server.url, profile):
            pipeline = start_pipeline("preview-test", video_file)
            state = asyncio.run(page_state(profile, want, timeout=30))
    finally:
        if pipeline is not None:
            pipeline.terminate()
            pipeline.join()
    assert state == want
