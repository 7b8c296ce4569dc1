"""``coral serve`` end to end: the real server in a subprocess, real inference stream manager
processes on a local model package and a generated video, real recordings and SQLite metrics."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_process import ServeProcess, serve_assets, serve_config

pytest.importorskip("inference")
pytest.importorskip("aiortc")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return serve_assets(tmp_path_factory.mktemp("serve"), frames=120)


@pytest.fixture(scope="module")
def server(assets: dict[str, Path]) -> Iterator[ServeProcess]:
    config = serve_config(assets["root"], assets["package"])
    # The frame-sink test plugin (tests/plugins/frame_sink_probe) on: its counts reach /metrics.
    import yaml

    settings = yaml.safe_load(config.read_text())
    settings["services"]["frame_sink_probe"] = {"path": str(assets["root"] / "probe.json")}
    config.write_text(yaml.safe_dump(settings))
    process = ServeProcess("--port", "0", "-c", str(config), cwd=assets["root"])
    yield process
    process.stop()


def create(server: ServeProcess, **body: Any) -> str:
    status, reply = server.json("POST", "/coral/pipelines", body)
    assert status == 201, (reply, server.log())
    return reply["pipeline_id"]


def test_healthz_and_runtime(server: ServeProcess) -> None:
    status, health = server.json("GET", "/healthz")
    assert status == 200 and health["status"] == "ok"
    status, runtime = server.json("GET", "/coral/runtime")
    assert status == 200
    assert runtime["patches"]["stream_manager"]["status"] == "applied"
    assert runtime["patches"]["serve_frame_relay"]["status"] == "applied"
    assert runtime["backends"]["onnx"]["available"] is True
    # inference's own API is served too
    status, info = server.json("GET", "/info")
    assert status == 200 and "version" in info


def test_pipeline_lifecycle_recordings_and_metrics(
    server: ServeProcess, assets: dict[str, Path]
) -> None:
    # the model given as a package path: served under the package's name
    pipeline_id = create(
        server, model=str(assets["package"]), source=str(assets["video"]), name="door"
    )
    running = server.wait_for(
        lambda: (p := server.pipeline(pipeline_id))["frames"] >= 20 and p, timeout=90
    )
    assert running["name"] == "door" and running["status"] in ("running", "ended")
    assert running["detections"] > 0 and running["fps"] > 0
    # A serve pipeline runs a one-step workflow, whose result carries no model time: the model
    # records its own, and it is below capture-to-result (which includes it)
    latency, end_to_end = running["latency_ms"], running["end_to_end_ms"]
    assert 0 < latency["p50"] <= latency["p95"], running
    assert 0 < end_to_end["p50"] <= end_to_end["p95"], running
    assert latency["p50"] <= end_to_end["p50"], running
    status, listing = server.json("GET", "/coral/pipelines")
    assert pipeline_id in [p["pipeline_id"] for p in listing["pipelines"]]

    ended = server.wait_for(
        lambda: (p := server.pipeline(pipeline_id))["status"] == "ended" and p, timeout=120
    )
    assert ended["frames"] == 120, ended
    # an ended pipeline shows its final counters (the relay publishes once every other sink
    # of the pipeline closed): every frame recorded (or counted as dropped) and every metric
    # point written, pending or dropped
    recording, metrics = ended["recording"], ended["metrics"]
    assert recording["pending"] == 0 and recording["failed"] == 0, (recording, server.log())
    assert recording["frames_written"] + recording["dropped"] == 120, ended
    assert metrics["written"] + metrics["pending"] + metrics["dropped"] == 120, ended
    probe = ended["frame_sinks"]["frame_sink_probe"]  # closed before the relay published
    assert probe["pending"] == probe["failed"] == 0, ended
    assert probe["frames"] + probe["dropped"] == 120, ended

    # recordings: listed with times, sizes and frames, served with Range
    segments = server.wait_for(
        lambda: (
            sum(
                s["frames"]
                for s in server.json("GET", f"/coral/recordings?pipeline_id={pipeline_id}")[1][
                    "recordings"
                ]
            )
            >= 120
            and server.json("GET", f"/coral/recordings?pipeline_id={pipeline_id}")[1]["recordings"]
        ),
        timeout=30,
    )
    first = segments[0]
    assert first["start"].endswith("Z") and first["end"] >= first["start"]
    assert first["size"] > 1000 and first["frames"] > 0
    status, headers, whole = server.request("GET", first["url"])
    assert status == 200 and len(whole) == first["size"]
    assert headers["accept-ranges"] == "bytes"
    status, headers, part = server.request("GET", first["url"], headers={"Range": "bytes=100-199"})
    assert status == 206, headers
    assert part == whole[100:200]
    assert headers["content-range"] == f"bytes 100-199/{first['size']}"
    # each segment's detections track, one JSON line per frame
    status, headers, track = server.request("GET", first["track"])
    assert status == 200 and headers["content-type"] == "application/x-ndjson", headers
    rows = [json.loads(line) for line in track.decode().splitlines()]
    assert len(rows) == first["frames"] and rows[0]["t"] == 0.0
    # the track is served behind the same guard and name checks as the segment
    status, _, _ = server.request("GET", first["track"], headers={"Host": "evil.example"})
    assert status == 403
    status, headers, _ = server.request(
        "GET", first["track"], headers={"Origin": "http://evil.example"}
    )
    assert "access-control-allow-origin" not in {k.lower() for k in headers}, headers
    folder = first["track"].rsplit("/", 1)[0]
    status, _, body = server.request("GET", f"{folder}/notes.jsonl")
    assert status == 400 and b"not a recording segment or track name" in body

    # metrics series from the SQLite store
    status, series = server.json("GET", f"/coral/metrics/{pipeline_id}")
    assert status == 200
    points = series["points"]
    assert len(points) == 120
    assert {"time", "fps", "latency_ms", "end_to_end_ms", "detections"} <= set(points[0])
    assert all(0 < p["latency_ms"] <= p["end_to_end_ms"] for p in points), points
    since = points[60]["time"]
    status, later = server.json("GET", f"/coral/metrics/{pipeline_id}?since={since}")
    assert status == 200 and 0 < len(later["points"]) <= 60
    status, reply = server.json("GET", f"/coral/metrics/{pipeline_id}?since=yesterday")
    assert status == 400 and "yesterday" in reply["error"]

    # Prometheus exposition, parsed by the reference parser
    from prometheus_client.parser import text_string_to_metric_families

    status, headers, text = server.request("GET", "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    frames = {s.labels["pipeline_id"]: s.value for s in families["coral_pipeline_frames"].samples}
    assert frames[pipeline_id] == 120

    def quantiles(family: str) -> dict[str, float]:
        samples = families[family].samples
        return {
            s.labels["quantile"]: s.value for s in samples if s.labels["pipeline_id"] == pipeline_id
        }

    latency = quantiles("coral_pipeline_latency_milliseconds")
    end_to_end = quantiles("coral_pipeline_end_to_end_milliseconds")
    assert set(latency) == set(end_to_end) == {"0.5", "0.95"}
    assert 0 < latency["0.5"] <= end_to_end["0.5"]
    assert "coral_recorder_frames_dropped" in families
    assert "coral_metric_points_dropped" in families
    sink_frames = {
        s.labels["plugin"]: s.value
        for s in families["coral_frame_sink_frames"].samples
        if s.labels["pipeline_id"] == pipeline_id
    }
    assert 0 < sink_frames["frame_sink_probe"] <= 120, text
    assert families["coral_frame_sink_dropped"].type == "counter"
    assert families["coral_pipeline_frames"].type == "counter"
    patches = {
        s.labels["patch"]: s.labels["status"] for s in families["coral_patch_status"].samples
    }
    assert patches["video_sink"] == "applied"

    # a plain model pipeline: none of inference's import or "experimental" warnings
    log = server.log(lines=0)
    assert "shadows an attribute" not in log and "init_with_workflow is experimental" not in log

    status, reply = server.json("DELETE", f"/coral/pipelines/{pipeline_id}")
    assert status == 200 and reply["deleted"] is True
    assert server.json("GET", f"/coral/pipelines/{pipeline_id}")[0] == 404
    assert server.json("DELETE", f"/coral/pipelines/{pipeline_id}")[0] == 404


def test_delete_stops_a_running_pipeline(server: ServeProcess, assets: dict[str, Path]) -> None:
    pipeline_id = create(server, model="faces", source=str(assets["video"]), max_fps=5)
    server.wait_for(lambda: server.pipeline(pipeline_id)["frames"] >= 3, timeout=90)
    status, _ = server.json("DELETE", f"/coral/pipelines/{pipeline_id}")
    assert status == 200
    frames = [p["pipeline_id"] for p in server.json("GET", "/coral/pipelines")[1]["pipelines"]]
    assert pipeline_id not in frames
    # its recording was finalised: closed segments only
    status, listing = server.json("GET", f"/coral/recordings?pipeline_id={pipeline_id}")
    assert status == 200 and listing["recordings"]


@pytest.mark.parametrize(
    ("body", "raw", "says"),
    [
        (None, b"{nope", "not JSON"),
        (["model"], None, "expected"),
        ({"model": "faces"}, None, '"source"'),
        ({"model": "faces", "source": "x.mp4", "colour": 1}, None, "colour"),
        ({"model": "faces", "source": "x.mp4", "max_fps": -1}, None, "max_fps"),
        ({"model": "nope", "source": "x.mp4"}, None, "'nope'"),
        # relative to the server's directory, which is one of its media_dirs
        ({"model": "faces", "source": "missing.mp4"}, None, "does not exist"),
        ({"model": "faces", "source": "/does/not/exist.mp4"}, None, "not allowed"),
    ],
)
def test_bad_pipeline_requests_are_400(
    server: ServeProcess, body: Any, raw: bytes | None, says: str
) -> None:
    status, reply = server.json("POST", "/coral/pipelines", body, raw=raw)
    assert status == 400, reply
    assert says in reply["error"]


def test_recording_paths_stay_inside_the_root(
    server: ServeProcess, assets: dict[str, Path]
) -> None:
    secret = assets["root"] / "secret.mp4"
    secret.write_bytes(b"secret")
    for path in (
        "/coral/recordings/..%2F..%2Fsecret.mp4/x",
        "/coral/recordings/p/..%2F..%2Fsecret.mp4",
        "/coral/recordings/p/%2Fetc%2Fpasswd",
        "/coral/recordings/p/0/..%2F..%2F..%2Fsecret.mp4",
        "/coral/recordings/p/0/20260101T000000Z_000001.mp4%2F..%2F..%2F..%2Fsecret.mp4",
        "/coral/recordings/p/etc/passwd",
    ):
        status, _, body = server.request("GET", path)
        assert 400 <= status < 500, (path, status)
        assert b"secret" != body
    assert server.json("GET", "/coral/recordings?pipeline_id=..")[0] == 400
    missing = server.request("GET", "/coral/recordings/p/0/20260101T000000Z_000001.mp4")[0]
    assert missing == 404


def test_bad_offers_are_400(server: ServeProcess, assets: dict[str, Path]) -> None:
    assert (
        server.json("POST", "/inference_pipelines/none/offer", {"sdp": "", "type": "offer"})[0]
        == 404
    )
    pipeline_id = create(server, model="faces", source=str(assets["video"]), max_fps=2)
    try:
        for body, raw in [
            (None, b"{not json"),
            (["sdp"], None),
            ({"type": "offer"}, None),
            ({"sdp": "v=0\r\n", "type": "answer"}, None),
            ({"sdp": "v=0\r\n", "type": "offer"}, None),
            ({"sdp": "garbage \x00 sdp", "type": "offer"}, None),
        ]:
            status, reply = server.json(
                "POST", f"/inference_pipelines/{pipeline_id}/offer", body, raw=raw
            )
            assert status == 400, (body, reply)
            assert reply["error"]
        assert server.json("GET", "/healthz")[1]["viewers"] == 0
    finally:
        server.json("DELETE", f"/coral/pipelines/{pipeline_id}")


def test_metrics_store_has_one_row_per_frame(assets: dict[str, Path]) -> None:
    """Runs after the lifecycle test: the forked pipeline's own writer flushed every point."""
    database = assets["root"] / "metrics.db"
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT pipeline_id, COUNT(*) FROM frames GROUP BY pipeline_id"
        ).fetchall()
    assert rows and max(count for _, count in rows) == 120, json.dumps(rows)
