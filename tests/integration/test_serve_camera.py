"""``coral serve`` on a real live RTSP camera: a pipeline survives the camera going away, and
the API and ``/metrics`` say so while it is away and after it came back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_process import ServeProcess, serve_assets, serve_config

pytest.importorskip("inference")
pytest.importorskip("aiortc")
pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    assets = serve_assets(tmp_path / "serve", frames=10)
    config = serve_config(assets["root"], assets["package"])
    process = ServeProcess("--port", "0", "-c", str(config), cwd=assets["root"])
    yield process
    process.stop()


def metric(server: ServeProcess, name: str, pipeline_id: str) -> float | None:
    status, _, body = server.request("GET", "/metrics")
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(f"{name}{{") and f'pipeline_id="{pipeline_id}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_a_camera_outage_is_shown_while_it_lasts_and_counted(rtsp_camera, server) -> None:
    status, reply = server.json(
        "POST", "/coral/pipelines", {"model": "faces", "source": rtsp_camera.url, "name": "door"}
    )
    assert status == 201, (reply, server.log())
    pipeline_id = reply["pipeline_id"]
    server.wait_for(lambda: server.pipeline(pipeline_id)["frames"] >= 20, timeout=120)
    assert server.pipeline(pipeline_id)["source_health"]["up"] is True
    assert metric(server, "coral_source_up", pipeline_id) == 1.0

    rtsp_camera.stop()
    away = server.wait_for(
        lambda: (p := server.pipeline(pipeline_id))["source_health"].get("up") is False and p,
        timeout=60,
    )
    assert away["status"] == "running", away  # reconnecting, not failed
    assert metric(server, "coral_source_up", pipeline_id) == 0.0

    rtsp_camera.start()
    back = server.wait_for(
        lambda: (p := server.pipeline(pipeline_id))["source_health"].get("reconnects") == 1 and p,
        timeout=120,
    )
    frames_before = back["frames"]
    assert back["source_health"]["up"] is True and back["source_health"]["outage_seconds"] > 0
    server.wait_for(lambda: server.pipeline(pipeline_id)["frames"] > frames_before + 10)
    assert metric(server, "coral_source_reconnects_total", pipeline_id) == 1.0
    assert metric(server, "coral_source_up", pipeline_id) == 1.0
