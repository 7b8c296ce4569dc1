"""ASGI middleware in front of every route: the bearer token and the request body limit.

Plain ASGI (no ``BaseHTTPMiddleware``) so streamed file responses pass through untouched. A
body announced larger than the limit is refused before it is read; a chunked body is counted as
it arrives and refused once it passes the limit.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Reachable without the token (liveness probes).
OPEN_PATHS = frozenset({"/healthz"})


async def send_error(send: Send, status: int, message: str, headers: tuple = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    pass


class Guard:
    """Wraps the app: 401 without the right ``Authorization: Bearer`` (when a token is set),
    413 for bodies over ``body_limit`` bytes."""

    def __init__(self, app: ASGIApp, token: str | None, body_limit: int) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.token is not None and not self._authorised(scope, headers):
            await send_error(
                send,
                401,
                "missing or wrong token: send Authorization: Bearer <token>",
                ((b"www-authenticate", b"Bearer"),),
            )
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_large = int(length) > self.body_limit
            except ValueError:
                await send_error(send, 400, "Content-Length is not a number")
                return
            if too_large:
                await send_error(send, 413, f"request body over {self.body_limit} bytes")
                return
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send)

    def _authorised(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        if scope.get("path") in OPEN_PATHS and scope.get("method") == "GET":
            return True
        value = headers.get(b"authorization", b"")
        scheme, _, given = value.partition(b" ")
        assert self.token is not None
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.body_limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await send_error(send, 413, f"request body over {self.body_limit} bytes")
