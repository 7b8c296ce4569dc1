"""``coral serve`` security, restore after restart and stop on SIGTERM, with the real server."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from serve_process import (
    ServeProcess,
    serve_assets,
    serve_config,
)

pytest.importorskip("inference")
pytest.importorskip("aiortc")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return serve_assets(tmp_path_factory.mktemp("serve-life"), frames=600)


def test_token_required_and_body_limited(assets: dict[str, Path], tmp_path: Path) -> None:
    config = serve_config(tmp_path, assets["package"], body_limit_bytes=4096)
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-s3cret-s3cret\n")
    token_file.chmod(0o600)
    server = ServeProcess(
        "--port", "0", "-c", str(config), "--token-file", str(token_file), cwd=tmp_path
    )
    try:
        assert server.json("GET", "/healthz")[0] == 200
        for path in ("/coral/pipelines", "/metrics", "/info", "/coral/recordings"):
            status, headers, _ = server.request("GET", path)
            assert status == 401, path
            assert headers["www-authenticate"] == "Bearer"
        status, _, page = server.request("GET", "/")  # redirected to the login page
        assert status == 200 and b'type="password"' in page
        wrong = {"Authorization": "Bearer nope"}
        assert server.request("GET", "/coral/pipelines", headers=wrong)[0] == 401
        good = {"Authorization": "Bearer s3cret-s3cret-s3cret"}
        assert server.json("GET", "/coral/pipelines", headers=good)[0] == 200
        status, reply = server.json("POST", "/coral/pipelines", raw=b"x" * 5000, headers=good)
        assert status == 413 and "4096" in reply["error"]
        status, reply = server.json("POST", "/coral/pipelines", raw=b"{bad", headers=good)
        assert status == 400
    finally:
        server.stop()


def test_sigterm_stops_pipelines_and_restart_restores_them(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    config = serve_config(tmp_path, assets["package"], grace_seconds=10)
    server = ServeProcess("--port", "0", "-c", str(config), cwd=tmp_path)
    try:
        status, reply = server.json(
            "POST",
            "/coral/pipelines",
            {"model": "faces", "source": str(assets["video"]), "name": "kept", "max_fps": 10},
        )
        assert status == 201, reply
        kept = reply["pipeline_id"]
        server.wait_for(lambda: server.pipeline(kept)["frames"] >= 30, timeout=90)
        code, took = server.terminate()
    finally:
        server.stop()
    assert code == 0, server.log()
    assert took < 10, took

    # recordings finalised and playable; every processed frame has its metric row
    import cv2

    segments = sorted((tmp_path / "recordings" / kept).rglob("*.mp4"))
    assert segments and not [s for s in segments if ".partial" in s.name]
    recorded = 0
    for segment in segments:
        capture = cv2.VideoCapture(str(segment))
        ok, image = capture.read()
        assert ok and image.shape == (180, 320, 3), segment
        recorded += int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
    with sqlite3.connect(tmp_path / "metrics.db") as connection:
        (rows,) = connection.execute(
            "SELECT COUNT(*) FROM frames WHERE pipeline_id = ?", (kept,)
        ).fetchone()
    assert rows >= 30 and rows == recorded, (rows, recorded)

    # a stored pipeline whose source is gone is listed with the reason, the other restarts
    with sqlite3.connect(tmp_path / "serve.db") as connection:
        connection.execute(  # as a store written before restart/state existed
            "INSERT INTO pipelines (pipeline_id, name, model, source, max_fps, created)"
            " VALUES ('gone', 'gone', 'faces', ?, NULL, ?)",
            (str(tmp_path / "missing.mp4"), time.time()),
        )
    again = ServeProcess("--port", "0", "-c", str(config), cwd=tmp_path)
    try:
        restored = again.wait_for(
            lambda: (p := again.json("GET", "/coral/pipelines")[1])["restore_failures"] and p,
            timeout=90,
        )
        (failure,) = restored["restore_failures"]
        assert failure["pipeline_id"] == "gone" and "does not exist" in failure["reason"]
        again.wait_for(lambda: again.pipeline(kept)["frames"] >= 5, timeout=90)
        assert again.pipeline(kept)["name"] == "kept"
        code, _ = again.terminate()
        assert code == 0
    finally:
        again.stop()

    skipped = ServeProcess("--port", "0", "-c", str(config), "--no-restore", cwd=tmp_path)
    try:
        assert skipped.json("GET", "/coral/pipelines")[1]["pipelines"] == []
    finally:
        skipped.stop()
