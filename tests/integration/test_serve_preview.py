"""``POST /inference_pipelines/{id}/offer`` with real aiortc viewers against the real server."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from chromium import Page, chromium, devtools
from serve_process import ServeProcess, serve_config
from webrtc_client import receive_frames

pytest.importorskip("inference")
pytest.importorskip("aiortc")

from aiortc import RTCPeerConnection, RTCSessionDescription  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SIZE = (320, 180)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    from coral_inference.models.sample import build_sample_package, generate_sample_video

    root = tmp_path_factory.mktemp("serve-preview")
    package = build_sample_package(root / "centerface").root
    generate_sample_video(root / "faces.mp4", frames=1000, size=SIZE, fps=25)
    config = serve_config(root, package, max_viewers_per_pipeline=16)  # ten viewers at once
    process = ServeProcess("--port", "0", "-c", str(config), cwd=root)
    process.video = root / "faces.mp4"  # type: ignore[attr-defined]
    yield process
    process.stop()


@pytest.fixture(scope="module")
def pipeline_id(server: ServeProcess) -> str:
    body = {"model": "faces", "source": str(server.video), "max_fps": 8}  # type: ignore[attr-defined]
    status, reply = server.json("POST", "/coral/pipelines", body)
    assert status == 201, reply
    server.wait_for(lambda: server.pipeline(reply["pipeline_id"])["frames"] >= 5, timeout=90)
    return reply["pipeline_id"]


async def viewer(server: ServeProcess, pipeline_id: str) -> tuple[RTCPeerConnection, Any]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    pc.on("track", lambda t: track.done() or track.set_result(t))
    await pc.setLocalDescription(await pc.createOffer())
    offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
    status, answer = await asyncio.to_thread(
        server.json, "POST", f"/inference_pipelines/{pipeline_id}/offer", offer
    )
    assert status == 200, answer
    await pc.setRemoteDescription(RTCSessionDescription(**answer))
    return pc, await asyncio.wait_for(track, 10)


def frames_counter(server: ServeProcess, pipeline_id: str) -> int:
    return server.pipeline(pipeline_id)["frames"]


def measured_fps(server: ServeProcess, pipeline_id: str, seconds: float) -> float:
    start, started = frames_counter(server, pipeline_id), time.monotonic()
    time.sleep(seconds)
    return (frames_counter(server, pipeline_id) - start) / (time.monotonic() - started)


def test_viewers_get_live_changing_frames(server: ServeProcess, pipeline_id: str) -> None:
    async def scenario() -> list[list[np.ndarray]]:
        viewers = [await viewer(server, pipeline_id) for _ in range(2)]
        try:
            return list(await asyncio.gather(*(receive_frames(t, 8, SIZE) for _, t in viewers)))
        finally:
            for pc, _ in viewers:
                await pc.close()

    for frames in asyncio.run(asyncio.wait_for(scenario(), 60)):
        assert frames[0].std() > 10, "blank frames"
        assert np.abs(frames[0].astype(int) - frames[-1]).mean() > 2, "frames do not change"


def test_ten_viewers_one_never_reading(
    server: ServeProcess, pipeline_id: str, record_property: Any
) -> None:
    alone = measured_fps(server, pipeline_id, 5)

    async def scenario() -> tuple[float, list[int]]:
        viewers = [await viewer(server, pipeline_id) for _ in range(10)]
        received = [0] * 9

        async def read(index: int, track: Any) -> None:
            while True:
                await track.recv()
                received[index] += 1

        readers = [asyncio.ensure_future(read(i, t)) for i, (_, t) in enumerate(viewers[1:])]
        try:
            await asyncio.sleep(2)
            before = list(received)
            watched = await asyncio.to_thread(measured_fps, server, pipeline_id, 5)
            return watched, [after - b for after, b in zip(received, before, strict=True)]
        finally:
            for task in readers:
                task.cancel()
            for pc, _ in viewers:
                await pc.close()

    watched, received = asyncio.run(asyncio.wait_for(scenario(), 90))
    record_property("fps", json.dumps({"alone": alone, "ten_viewers": watched}))
    print(f"pipeline fps alone {alone:.2f}, with ten viewers {watched:.2f}; received {received}")
    assert alone > 3
    assert watched >= 0.9 * alone, (alone, watched)
    assert min(received) >= 10, received  # every reading viewer kept receiving, ~5 s of frames


def test_twenty_offers_leave_no_thread_or_task(server: ServeProcess, pipeline_id: str) -> None:
    async def one_viewer() -> None:
        pc, track = await viewer(server, pipeline_id)
        try:
            await receive_frames(track, 2, SIZE)
        finally:
            await pc.close()

    def settled() -> dict[str, int]:
        def idle() -> dict[str, int] | None:
            health = server.json("GET", "/healthz")[1]
            return health if health["viewers"] == 0 else None

        return server.wait_for(idle, timeout=20, interval=0.2)

    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        await asyncio.gather(*(one_viewer() for _ in range(3)))  # warm the executor up
        await asyncio.sleep(1)
        before = await asyncio.to_thread(settled)
        for _ in range(20):
            await one_viewer()
        await asyncio.sleep(1)
        return before, await asyncio.to_thread(settled)

    before, after = asyncio.run(asyncio.wait_for(scenario(), 150))
    print(
        f"threads {before['threads']} -> {after['threads']}, tasks {before['tasks']} -> "
        f"{after['tasks']}"
    )
    assert after["threads"] <= before["threads"], (before, after)
    assert after["tasks"] <= before["tasks"], (before, after)


# Plays the newest recording (once listed) and reports the boxes drawn over it from its track.
PLAYBACK_STATE = """(() => {
  const play = document.querySelector("#recordings tbody button");
  const player = document.getElementById("playback");
  if (play && !player.src) play.click();
  const boxes = document.getElementById("playback-boxes");
  return JSON.stringify({listed: Boolean(play), rows: Number(boxes.dataset.trackRows),
                         boxes: Number(boxes.dataset.boxes), time: player.currentTime});
})()"""

PAGE_STATE = """(() => {
  const video = document.getElementById("preview");
  const rows = [...document.querySelectorAll("#pipelines tbody tr")].map((r) => r.dataset.pipelineId);
  const charts = [...document.querySelectorAll("canvas[id^=chart-]")].map((c) => Number(c.dataset.points || 0));
  let mean = 0, sample = [];
  if (video.videoWidth) {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth; canvas.height = video.videoHeight;
    const context = canvas.getContext("2d");
    context.drawImage(video, 0, 0);
    const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let total = 0;
    for (let i = 0; i < pixels.length; i += 4) total += pixels[i] + pixels[i + 1] + pixels[i + 2];
    mean = total / (pixels.length / 4) / 3;
    for (let i = 0; i < pixels.length; i += 4 * 997) sample.push(pixels[i]);
  }
  const plugins = document.querySelectorAll("#patches tbody tr").length;
  return JSON.stringify({rows, charts, width: video.videoWidth, height: video.videoHeight,
                         mean, sample, patches: plugins});
})()"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_dashboard_in_headless_chromium(
    server: ServeProcess, pipeline_id: str, tmp_path: Path
) -> None:
    profile = tmp_path / "chromium"

    async def state(page: Page) -> dict[str, Any]:
        return await page.evaluate(PAGE_STATE) or {
            "rows": [],
            "charts": [0],
            "width": 0,
            "height": 0,
            "patches": 0,
        }

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], bytes]:
        session, socket_ = await devtools(profile, 30)
        try:
            page = Page(socket_)
            deadline = time.monotonic() + 45
            while True:
                first = await state(page)
                if (
                    pipeline_id in first["rows"]
                    and (first["width"], first["height"]) == SIZE
                    and min(first["charts"]) > 0
                    and first["patches"] > 0
                ):
                    break
                assert time.monotonic() < deadline, first
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.5)
            second = await state(page)
            # a recording plays with its track's boxes over it (segments close every 2 s)
            deadline, seen = time.monotonic() + 60, []
            while not any(s["boxes"] > 0 and s["time"] > 0 for s in seen):
                assert time.monotonic() < deadline, seen[-3:]
                seen.append(await page.evaluate(PLAYBACK_STATE))
                await asyncio.sleep(0.2)
            second["playback"] = seen[-1]
            shot = await page.call("Page.captureScreenshot", format="png")
            return first, second, base64.b64decode(shot["data"])
        finally:
            await socket_.close()
            await session.close()

    with chromium(server.url, profile):
        first, second, png = asyncio.run(asyncio.wait_for(scenario(), 90))
    screenshot = tmp_path / "dashboard.png"
    screenshot.write_bytes(png)
    print(f"dashboard screenshot: {screenshot}")
    assert png.startswith(b"\x89PNG")
    assert first["mean"] > 10, "the preview is blank"
    assert first["sample"] != second["sample"], "the preview does not change"
    assert second["playback"]["rows"] > 0, second["playback"]  # the track loaded
