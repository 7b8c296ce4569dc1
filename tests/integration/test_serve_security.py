"""``coral serve`` attacked as a web page, a token holder and a network neighbour would: the real
server in a subprocess, real HTTP, real listeners on 127.0.0.1, real files."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import select
import shutil
import socket
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_process import ServeProcess, serve_assets, serve_config

pytest.importorskip("inference")
pytest.importorskip("aiortc")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOKEN = "t0ken-for-the-security-tests"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
ALLOWED_ORIGIN = "http://dashboard.example:8080"


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return serve_assets(tmp_path_factory.mktemp("serve-security"), frames=400)


def started(assets: dict[str, Path], name: str, *args: str, **serve: Any) -> Iterator[ServeProcess]:
    """A server in its own folder under the assets, its ``services.serve`` set to ``serve``
    (sources may come from the assets' folder); stopped after."""
    root = assets["root"] / name
    root.mkdir()
    config = serve_config(root, assets["package"], media_dirs=[str(assets["root"])], **serve)
    process = ServeProcess("--port", "0", "-c", str(config), *args, cwd=root)
    process.root = root  # type: ignore[attr-defined]
    yield process
    process.stop()


@pytest.fixture(scope="module")
def open_server(assets: dict[str, Path]) -> Iterator[ServeProcess]:
    """Loopback, no token: what a web page on the owner's browser can reach."""
    yield from started(
        assets, "open", allowed_origins=[ALLOWED_ORIGIN], allowed_hosts=["board.example"]
    )


@pytest.fixture(scope="module")
def token_server(assets: dict[str, Path]) -> Iterator[ServeProcess]:
    yield from started(
        assets,
        "token",
        "--token",
        TOKEN,
        max_pipelines=2,
        max_viewers=32,
        max_viewers_per_pipeline=32,
        viewer_connect_seconds=30,  # the default: 33 offers fit in it on a loaded machine
        model_dirs=[str(assets["root"])],
    )


def raw_request(
    server: ServeProcess, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """One request with exactly these headers (``Host`` included), as a browser might send."""
    host, port = server.url.split("//")[1].rstrip("/").rsplit(":", 1)
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        headers.setdefault("Host", f"{host}:{port}")
        for name, value in headers.items():
            connection.putheader(name, value)
        if body and "Transfer-Encoding" not in headers:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if body and headers.get("Transfer-Encoding") == "chunked":
            for start in range(0, len(body), 16384):
                chunk = body[start : start + 16384]
                connection.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            connection.send(b"0\r\n\r\n")
        elif body:
            connection.send(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def pipelines(server: ServeProcess, headers: dict[str, str] | None = None) -> list[str]:
    status, body = server.json("GET", "/coral/pipelines", headers=headers)
    assert status == 200, body
    return [p["pipeline_id"] for p in body["pipelines"]]


def dynamic_block_workflow(marker: Path) -> dict[str, Any]:
    """``/workflows/run`` with a custom Python block that creates ``marker``."""
    code = f"def run(self):\n    open({str(marker)!r}, 'w').write('ran')\n    return {{'out': 1}}\n"
    return {
        "specification": {
            "version": "1.0",
            "inputs": [],
            "dynamic_blocks_definitions": [
                {
                    "type": "DynamicBlockDefinition",
                    "manifest": {
                        "type": "ManifestDescription",
                        "block_type": "Marker",
                        "inputs": {},
                        "outputs": {"out": {"type": "DynamicOutputDefinition", "kind": []}},
                    },
                    "code": {"type": "PythonCode", "run_function_code": code},
                }
            ],
            "steps": [{"type": "Marker", "name": "m"}],
            "outputs": [{"type": "JsonField", "name": "out", "selector": "$steps.m.out"}],
        },
        "inputs": {},
    }


# --- a web page the owner opens (no token on loopback) ------------------------------------


def test_a_foreign_origin_gets_no_cors_and_cannot_change_state(
    open_server: ServeProcess, assets: dict[str, Path]
) -> None:
    status, headers, _ = raw_request(
        open_server,
        "OPTIONS",
        "/coral/pipelines",
        Origin="http://evil.example",
        Access_Control_Request_Method="POST",
        Access_Control_Request_Headers="content-type",
    )
    assert status == 403 and "access-control-allow-origin" not in headers
    # a listed origin is answered, without credentials on the preflight
    status, headers, _ = raw_request(
        open_server,
        "OPTIONS",
        "/coral/pipelines",
        Origin=ALLOWED_ORIGIN,
        Access_Control_Request_Method="POST",
    )
    assert status == 204 and headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    # inference's own routes no longer answer every origin either
    status, headers, _ = raw_request(open_server, "GET", "/info", Origin="http://evil.example")
    assert status == 200 and "access-control-allow-origin" not in headers

    body = json.dumps({"model": "faces", "source": str(assets["video"])}).encode()
    status, _, reply = raw_request(
        open_server,
        "POST",
        "/coral/pipelines",
        body,
        Origin="http://evil.example",
        Content_Type="application/json",
    )
    assert status == 403, reply
    assert pipelines(open_server) == []


def test_a_simple_text_plain_post_is_refused(
    open_server: ServeProcess, assets: dict[str, Path]
) -> None:
    body = json.dumps({"model": "faces", "source": str(assets["video"])}).encode()
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, _, reply = raw_request(
            open_server, "POST", "/coral/pipelines", body, Content_Type=content_type
        )
        assert status == 415, (content_type, reply)
    assert pipelines(open_server) == []


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example"])
def test_a_forged_host_is_refused(open_server: ServeProcess, host: str) -> None:
    status, _, reply = raw_request(open_server, "GET", "/coral/pipelines", Host=host)
    assert status == 403, reply
    # loopback names and the configured ones answer
    for good in ("localhost", "127.0.0.1", "board.example"):
        assert raw_request(open_server, "GET", "/healthz", Host=good)[0] == 200, good


def test_dynamic_python_blocks_do_not_run_without_a_token(
    open_server: ServeProcess, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-without-token"
    status, _, reply = open_server.request("POST", "/workflows/run", dynamic_block_workflow(marker))
    assert status >= 400, reply
    assert b"ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS" in reply
    assert not marker.exists()


def test_the_dashboard_is_not_frameable_and_allows_only_its_own_scripts(
    open_server: ServeProcess,
) -> None:
    status, headers, page = open_server.request("GET", "/")
    assert status == 200 and b"<title>coral serve</title>" in page
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def websocket_handshake(server: ServeProcess, *extra_headers: str) -> str:
    """The first bytes of the server's answer to a WebSocket upgrade of ``/ws``."""
    host, port = server.url.split("//")[1].rstrip("/").rsplit(":", 1)
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: {host}:{port}",
        *extra_headers,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return connection.recv(4096).decode("latin-1")


def test_websocket_from_a_foreign_origin_is_refused(open_server: ServeProcess) -> None:
    answer = websocket_handshake(open_server, "Origin: http://evil.example")
    assert answer.startswith("HTTP/1.1 403"), answer


# --- a token holder ---------------------------------------------------------------------


def test_dynamic_python_blocks_do_not_run_with_the_token(
    token_server: ServeProcess, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-with-token"
    status, _, reply = token_server.request(
        "POST", "/workflows/run", dynamic_block_workflow(marker), headers=BEARER
    )
    assert status >= 400, reply
    assert not marker.exists()


def test_refused_schemes_never_reach_a_local_listener(token_server: ServeProcess) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        for source in (
            f"gopher://127.0.0.1:{port}/_SET%20x%201",
            f"tcp://127.0.0.1:{port}",
            f"ftp://127.0.0.1:{port}/x.mp4",
            f"udp://127.0.0.1:{port}",
            f"rtmp://127.0.0.1:{port}/live",
            "file:///etc/shadow",
            "concat:/etc/passwd",
        ):
            status, reply = token_server.json(
                "POST", "/coral/pipelines", {"model": "faces", "source": source}, headers=BEARER
            )
            assert status == 400 and "not allowed" in reply["error"], (source, reply)
        assert pipelines(token_server, BEARER) == []
        readable, _, _ = select.select([listener], [], [], 1.0)
        assert readable == [], "something connected to the listener"
    finally:
        listener.close()


def test_host_paths_outside_the_allowed_folders_are_refused_alike(
    token_server: ServeProcess, assets: dict[str, Path], tmp_path: Path
) -> None:
    existing = tmp_path / "secret.mp4"
    existing.write_bytes(assets["video"].read_bytes())  # a real video, outside media_dirs
    answers = []
    for source in (str(existing), str(tmp_path / "missing.mp4"), "/etc/shadow"):
        status, reply = token_server.json(
            "POST", "/coral/pipelines", {"model": "faces", "source": source}, headers=BEARER
        )
        assert status == 400, reply
        answers.append(reply["error"].replace(source, "PATH"))
    assert len(set(answers)) == 1, answers
    answers = []
    elsewhere = tmp_path / "package"
    shutil.copytree(assets["package"], elsewhere)  # a real package, outside model_dirs
    for model in (str(elsewhere), "/etc", "/nonexistent/pkg"):
        status, reply = token_server.json(
            "POST",
            "/coral/pipelines",
            {"model": model, "source": str(assets["video"])},
            headers=BEARER,
        )
        assert status == 400, reply
        answers.append(reply["error"].replace(model, "PATH"))
    assert len(set(answers)) == 1, answers


def test_a_symlink_out_of_the_recording_root_is_not_served(
    token_server: ServeProcess, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere" / "cam"
    outside.mkdir(parents=True)
    name = "20260101T000000Z_000001.mp4"
    (outside / name).write_bytes(b"not yours")
    recordings = token_server.root / "recordings"  # type: ignore[attr-defined]
    recordings.mkdir(exist_ok=True)
    (recordings / "evil").symlink_to(tmp_path / "elsewhere")
    status, _, body = token_server.request(
        "GET", f"/coral/recordings/evil/cam/{name}", headers=BEARER
    )
    assert status == 404 and b"not yours" not in body
    status, listing = token_server.json("GET", "/coral/recordings", headers=BEARER)
    assert status == 200 and [s for s in listing["recordings"] if s["pipeline_id"] == "evil"] == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"name": "n" * 300_000}, 413),
        ({"name": "n" * 129}, 400),
        ({"name": "<script>"}, 400),
        ({"max_fps": 0}, 400),
        ({"max_fps": 1e308}, 400),
    ],
)
def test_bad_pipeline_fields_are_refused(
    token_server: ServeProcess, assets: dict[str, Path], body: dict[str, Any], status: int
) -> None:
    request = {"model": "faces", "source": str(assets["video"]), **body}
    got, reply = token_server.json("POST", "/coral/pipelines", request, headers=BEARER)
    assert got == status, reply


def test_bodies_over_the_limit_non_finite_and_deep_json(token_server: ServeProcess) -> None:
    headers = {**BEARER, "Content_Type": "application/json"}
    big = b'{"name": "' + b"n" * 100_000 + b'"}'
    status, _, reply = raw_request(
        token_server, "POST", "/coral/pipelines", big, Transfer_Encoding="chunked", **headers
    )
    assert status == 413, reply
    status, _, reply = raw_request(
        token_server, "POST", "/coral/pipelines", b'{"model": "faces", "max_fps": NaN}', **headers
    )
    assert status == 400 and b"NaN" in reply, reply
    deep = b"[" * 20_000 + b"]" * 20_000
    for path in ("/coral/pipelines", "/workflows/run"):
        status, _, reply = raw_request(token_server, "POST", path, deep, **headers)
        assert status == 400 and b"nested" in reply, (path, reply)


def test_limits_on_pipelines_sdp_and_silent_viewers(
    token_server: ServeProcess, assets: dict[str, Path]
) -> None:
    from aiortc import RTCPeerConnection

    created = []
    while True:
        status, reply = token_server.json(
            "POST",
            "/coral/pipelines",
            {"model": "faces", "source": str(assets["video"]), "max_fps": 5},
            headers=BEARER,
        )
        if status != 201:
            break
        created.append(reply["pipeline_id"])
    assert status == 429 and "max_pipelines" in reply["error"], reply
    assert len(pipelines(token_server, BEARER)) == 2
    pipeline_id = created[0]

    offer_path = f"/inference_pipelines/{pipeline_id}/offer"
    status, reply = token_server.json(
        "POST", offer_path, {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 8000}, headers=BEARER
    )
    assert status == 413, reply

    async def silent_offers() -> list[int]:
        peers = []
        for _ in range(33):
            pc = RTCPeerConnection()
            pc.addTransceiver("video", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            peers.append(pc)  # never given the answer: it never connects

        def offer(pc: RTCPeerConnection) -> int:
            body = {"sdp": pc.localDescription.sdp, "type": "offer"}
            return token_server.json("POST", offer_path, body, headers=BEARER)[0]

        try:  # all at once, well inside the deadline
            statuses = await asyncio.gather(*(asyncio.to_thread(offer, pc) for pc in peers))
            health = await asyncio.to_thread(token_server.json, "GET", "/healthz", headers=BEARER)
            assert health[1]["viewers"] == 32, health
            await asyncio.to_thread(
                token_server.wait_for,
                lambda: token_server.json("GET", "/healthz", headers=BEARER)[1]["viewers"] == 0,
                120,
            )
        finally:
            for pc in peers:
                await pc.close()
        return sorted(statuses)

    statuses = asyncio.run(asyncio.wait_for(silent_offers(), 240))
    assert statuses == [200] * 32 + [429], statuses
    assert "not connected within 30 s" in token_server.log(lines=0), token_server.log()


def test_credentials_masked_token_off_command_lines_and_private_files(
    token_server: ServeProcess, assets: dict[str, Path]
) -> None:
    for pipeline_id in pipelines(token_server, BEARER):
        assert (
            token_server.json("DELETE", f"/coral/pipelines/{pipeline_id}", headers=BEARER)[0] == 200
        )
    camera = socket.socket()  # answers nothing: the pipeline's RTSP client gives up
    camera.bind(("127.0.0.1", 0))
    camera.listen(4)
    camera.settimeout(90)
    port = camera.getsockname()[1]
    url = f"rtsp://bob:hunter2@127.0.0.1:{port}/stream"
    status, reply = token_server.json(
        "POST", "/coral/pipelines", {"model": "faces", "source": url}, headers=BEARER
    )
    assert status == 201, reply
    masked = token_server.pipeline(reply["pipeline_id"], BEARER)
    assert masked["source"] == f"rtsp://bob:***@127.0.0.1:{port}/stream"
    connection, _ = camera.accept()  # the pipeline process tried the camera
    connection.close()
    camera.close()
    status, reply = token_server.json(
        "POST",
        "/coral/pipelines",
        {"model": "faces", "source": str(assets["video"])},
        headers=BEARER,
    )
    assert status == 201, reply
    recording = reply["pipeline_id"]
    token_server.wait_for(lambda: token_server.pipeline(recording, BEARER)["frames"] >= 20, 90)
    listing = token_server.json("GET", "/coral/pipelines", headers=BEARER)[1]
    assert "hunter2" not in json.dumps(listing)

    # the token is on no process's command line, the server's or its pipelines'
    server_pid = token_server.process.pid
    children = [  # forked by whichever thread runs the stream manager
        pid
        for task in Path(f"/proc/{server_pid}/task").iterdir()
        for pid in (task / "children").read_text().split()
    ]
    assert children, "the pipelines run in child processes"
    for pid in [server_pid, *map(int, children)]:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert TOKEN.encode() not in command_line, pid

    root = token_server.root  # type: ignore[attr-defined]
    segments = token_server.wait_for(
        lambda: sorted((root / "recordings" / recording).rglob("*.mp4")), 90
    )

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(root / "serve.db") == 0o600
    assert mode(root / "metrics.db") == 0o600
    assert mode(root / "recordings" / recording) == 0o700
    assert {mode(segment) for segment in segments} == {0o600}
    assert {mode(p) for p in (root / "recordings" / recording).rglob("*") if p.is_dir()} == {0o700}
    with sqlite3.connect(root / "serve.db") as store:  # the store keeps what it reconnects to
        sources = [row[0] for row in store.execute("SELECT source FROM pipelines")]
    assert url in sources
    # by now the camera's pipeline failed and said so: nowhere with the password
    assert "hunter2" not in token_server.log(lines=0)


def test_healthz_tells_nothing_without_the_token(token_server: ServeProcess) -> None:
    assert token_server.json("GET", "/healthz") == (200, {"status": "ok"})
    status, detailed = token_server.json("GET", "/healthz", headers=BEARER)
    assert status == 200 and "pipelines" in detailed and "restore" not in detailed


def test_login_sets_an_httponly_strict_cookie_the_api_accepts(token_server: ServeProcess) -> None:
    status, headers, body = raw_request(token_server, "GET", "/")
    assert status == 303 and headers["location"] == "/login"
    status, _, page = raw_request(token_server, "GET", "/login")
    assert status == 200 and b'type="password"' in page

    def log_in(token: str) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps({"token": token}).encode()
        return raw_request(
            token_server, "POST", "/coral/login", body, Content_Type="application/json"
        )

    assert [log_in(wrong)[0] for wrong in ("nope", TOKEN + "x")] == [401, 401]
    status, headers, _ = log_in(TOKEN)
    assert status == 200
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
    pair = cookie.split(";", 1)[0]
    assert raw_request(token_server, "GET", "/coral/pipelines", Cookie=pair)[0] == 200
    assert raw_request(token_server, "GET", "/", Cookie=pair)[0] == 200
    assert raw_request(token_server, "GET", "/coral/pipelines", Cookie=pair + "0")[0] == 401
    # the cookie does not let a foreign page change state
    status, _, _ = raw_request(
        token_server,
        "POST",
        "/coral/pipelines",
        b"{}",
        Cookie=pair,
        Origin="http://evil.example",
        Content_Type="application/json",
    )
    assert status == 403


def test_websocket_without_the_token_is_refused(token_server: ServeProcess) -> None:
    answer = websocket_handshake(token_server)
    assert answer.startswith("HTTP/1.1 403"), answer


# --- the owner opted in ------------------------------------------------------------------


def test_allow_code_execution_lets_dynamic_blocks_run(
    assets: dict[str, Path], tmp_path: Path
) -> None:
    """The control for the two tests above: the same request runs once the owner allows it."""
    config = serve_config(tmp_path, assets["package"], allow_code_execution=True)
    server = ServeProcess("--port", "0", "-c", str(config), cwd=tmp_path)
    try:
        marker = tmp_path / "ran-when-allowed"
        status, _, reply = server.request("POST", "/workflows/run", dynamic_block_workflow(marker))
        assert status == 200, reply
        assert marker.read_text() == "ran"
    finally:
        server.stop()


def test_ffmpeg_opens_only_the_allowed_protocols(tmp_path: Path) -> None:
    """FFmpeg's protocol whitelist, set by coral serve before inference is imported: a
    ``ftp://`` source reaches a local listener without it and not with it."""
    import subprocess
    import sys

    script = """
import socket, sys
listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(4)
if sys.argv[1] == "hardened":
    from coral_inference.app.serve.hardening import harden_environment
    from coral_inference.app.serve.settings import ServeSettings
    harden_environment(ServeSettings())
import cv2, select
cv2.VideoCapture(f"ftp://127.0.0.1:{listener.getsockname()[1]}/x.mp4?timeout=2000000", cv2.CAP_FFMPEG)
print("connected" if select.select([listener], [], [], 0)[0] else "untouched")
"""
    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_CAPTURE_OPTIONS"}

    def run(mode: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", script, mode],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        return result.stdout.strip().splitlines()[-1]

    assert run("plain") == "connected"
    assert run("hardened") == "untouched"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_the_dashboard_with_a_token_logs_in_once_in_chromium(
    token_server: ServeProcess, assets: dict[str, Path], tmp_path: Path
) -> None:
    """A browser opening ``/`` lands on the login page; the token typed once opens the
    dashboard, which lists the pipelines through the HttpOnly cookie (invisible to scripts)."""
    from chromium import Page, chromium, devtools

    from coral_inference.models.sample import generate_sample_video

    for pipeline_id in pipelines(token_server, BEARER):
        token_server.json("DELETE", f"/coral/pipelines/{pipeline_id}", headers=BEARER)
    short = assets["root"] / "short.mp4"
    generate_sample_video(short, frames=40, size=(320, 180), fps=25)
    status, reply = token_server.json(
        "POST",
        "/coral/pipelines",
        {"model": "faces", "source": str(short), "name": "door", "max_fps": 10},
        headers=BEARER,
    )
    assert status == 201, reply
    pipeline_id = reply["pipeline_id"]

    async def scenario() -> dict[str, Any]:
        session, socket_ = await devtools(tmp_path / "profile", 30)
        try:
            page = Page(socket_)
            await page.wait_for(
                "location.pathname === '/login' && document.readyState === 'complete'", 45
            )
            await page.evaluate("document.getElementById('token').focus()")
            await page.call("Input.insertText", text=TOKEN)
            await page.call(
                "Input.dispatchKeyEvent",
                type="keyDown",
                key="Enter",
                code="Enter",
                windowsVirtualKeyCode=13,
                text="\r",
            )
            await page.call(
                "Input.dispatchKeyEvent",
                type="keyUp",
                key="Enter",
                code="Enter",
                windowsVirtualKeyCode=13,
            )
            rows = await page.wait_for(
                "location.pathname === '/' && JSON.stringify([...document.querySelectorAll("
                "'#pipelines tbody tr')].map((r) => r.dataset.pipelineId))",
                45,
            )
            # the pipeline's 40 frames end: the preview says so, not "connected"
            await asyncio.to_thread(
                token_server.wait_for,
                lambda: token_server.pipeline(pipeline_id, BEARER)["status"] == "ended",
                90,
            )
            preview = await page.wait_for(
                "JSON.stringify(document.getElementById('preview-state').textContent"
                ".startsWith('pipeline ended') && "
                "document.getElementById('preview-state').textContent)",
                30,
            )
            return {
                "preview": preview,
                "rows": rows,
                "cookie_visible": await page.evaluate("JSON.stringify(document.cookie)"),
                "status": await page.evaluate(
                    "JSON.stringify(document.getElementById('status').textContent)"
                ),
            }
        finally:
            await socket_.close()
            await session.close()

    with chromium(token_server.url, tmp_path / "profile"):
        seen = asyncio.run(asyncio.wait_for(scenario(), 120))
    assert pipeline_id in seen["rows"], seen
    assert seen["cookie_visible"] == "", seen  # HttpOnly: no script can read the session
    assert not seen["status"].startswith("error"), seen
    assert seen["preview"] == "pipeline ended: its last frame", seen
