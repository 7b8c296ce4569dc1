"""``coral serve``'s guard as plain ASGI: what reaches the app, what is answered before it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from coral_inference.app.serve.security import (
    Guard,
    HostPolicy,
    host_name,
    json_problem,
    session_cookie_name,
    session_value,
)

pytestmark = pytest.mark.core

TOKEN = "0123456789abcdef0123"


class Recorder:
    """An app that accepts every WebSocket and answers every request 200."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.calls.append(scope)
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        message = await receive()
        self.bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def guard(app: Recorder, **kwargs: Any) -> Guard:
    options = {
        "token": TOKEN,
        "port": 9001,
        "hosts": HostPolicy.for_server("127.0.0.1", ("board.example", ".lan")),
        "allowed_origins": ("http://ui.example",),
        "body_limit": 1024,
        "image_body_limit": 4096,
        **kwargs,
    }
    return Guard(app, **options)


def call(
    asgi: Guard,
    kind: str,
    path: str,
    headers: dict[str, str],
    body: list[bytes] | None = None,
    method: str = "GET",
) -> list[dict[str, Any]]:
    chunks = list(body or [b""])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": kind,
        "path": path,
        "method": method,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(asgi(scope, receive, send))
    return sent


def status(sent: list[dict[str, Any]]) -> int:
    return sent[0]["status"]


def test_websockets_need_the_token_and_a_known_origin() -> None:
    app = Recorder()
    asgi = guard(app)
    host = {"Host": "127.0.0.1:9001"}
    assert call(asgi, "websocket", "/ws", host)[0]["type"] == "websocket.close"
    bearer = {**host, "Authorization": f"Bearer {TOKEN}"}
    foreign = {**bearer, "Origin": "http://evil.example"}
    assert call(asgi, "websocket", "/ws", foreign)[0]["type"] == "websocket.close"
    assert app.calls == []
    assert call(asgi, "websocket", "/ws", bearer)[0]["type"] == "websocket.accept"
    cookie = {**host, "Cookie": f"{session_cookie_name(9001)}={session_value(TOKEN)}"}
    assert call(asgi, "websocket", "/ws", cookie)[0]["type"] == "websocket.accept"
    assert len(app.calls) == 2


def test_chunked_bodies_over_the_limit_are_413_before_the_app() -> None:
    app = Recorder()
    asgi = guard(app)
    headers = {
        "Host": "localhost",
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Transfer-Encoding": "chunked",
    }
    sent = call(asgi, "http", "/coral/pipelines", headers, [b"[" * 600, b"]" * 600], "POST")
    assert status(sent) == 413 and app.calls == []
    # inference's routes take images: their own, larger limit
    sent = call(
        asgi, "http", "/infer/object_detection", headers, [b'"' + b"a" * 2000 + b'"'], "POST"
    )
    assert status(sent) == 200 and app.bodies == [b'"' + b"a" * 2000 + b'"']


def test_the_cookie_is_not_the_token_and_per_port() -> None:
    assert TOKEN not in session_value(TOKEN)
    assert session_cookie_name(9001) != session_cookie_name(9002)


@pytest.mark.parametrize(
    ("header", "allowed"),
    [
        ("127.0.0.1:9001", True),
        ("localhost", True),
        ("[::1]:9001", True),
        ("127.8.8.8", True),
        ("board.example:9001", True),
        ("cam.lan", True),
        ("lan", True),
        ("evil.example", False),
        ("127.0.0.1.evil.example", False),
        ("10.0.0.5:9001", False),
        ("", False),
        ("localhost:abc", False),
    ],
)
def test_host_policy_of_a_loopback_server(header: str, allowed: bool) -> None:
    policy = HostPolicy.for_server("127.0.0.1", ("board.example", ".lan"))
    assert policy.allows(header) is allowed


def test_a_wildcard_bind_accepts_ip_literals_but_not_other_names() -> None:
    policy = HostPolicy.for_server("0.0.0.0", ())
    assert policy.allows("10.0.0.5:9001") and policy.allows("[fe80::1]")
    assert not policy.allows("evil.example")
    assert HostPolicy.for_server("0.0.0.0", ("*",)).allows("anything.example")


def test_host_names() -> None:
    assert host_name("[::1]:80") == "::1"
    assert host_name("Board.Example.:80") == "board.example"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"a": 1}', None),
        (b'{"a": NaN}', "NaN"),
        (b"[Infinity]", "Infinity"),
        (b"[" * 65 + b"]" * 65, "nested"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b"{nope", "not JSON"),
    ],
)
def test_json_problems(body: bytes, problem: str | None) -> None:
    found = json_problem(body)
    assert (found is None) if problem is None else (problem in found)
