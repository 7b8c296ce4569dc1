"""ASGI middleware in front of every route of ``coral serve``, for HTTP and WebSocket alike.

In order, for each request:

1. **Host**: the ``Host`` header must name this server (loopback names, the bound address, or
   ``services.serve.allowed_hosts``), so a DNS-rebinding page cannot reach it by another name.
2. **Origin / CORS**: a preflight is answered only for ``services.serve.allowed_origins``; a
   state-changing request (or a WebSocket) from any other origin is refused. inference's own CORS
   middleware is switched off (:mod:`~coral_inference.app.serve.hardening`).
3. **Token**: with a token, every route but ``GET /healthz`` and the login page needs
   ``Authorization: Bearer TOKEN`` or the session cookie the login page sets (HttpOnly,
   SameSite=Strict); a browser asking for ``/`` is sent to the login page.
4. **Content type**: a state-changing request with a body must be ``application/json`` (a web
   page can send ``text/plain``, forms and multipart to any site without asking; it cannot send
   JSON cross-site without a preflight). Requests carrying the bearer header may send forms to
   inference's own routes.
5. **Body**: read whole before the route runs: over the limit is 413 whether announced or
   chunked (``body_limit_bytes`` for the coral routes, ``image_body_limit_bytes`` for
   inference's image routes); JSON nested deeper than :data:`MAX_JSON_DEPTH` or holding
   ``NaN``/``Infinity`` is 400.
6. **Headers** on every answer: ``nosniff``, ``X-Frame-Options: DENY``, no referrer; the
   dashboard pages also get a Content-Security-Policy that allows only this origin.

Plain ASGI (no ``BaseHTTPMiddleware``) so streamed file responses pass through untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Reachable without the token: the liveness probe and the login page with its assets.
OPEN_ROUTES = frozenset(
    {
        ("GET", "/healthz"),
        ("GET", "/login"),
        ("POST", "/coral/login"),
        ("POST", "/coral/logout"),
        ("GET", "/coral/static/login.js"),
        ("GET", "/coral/static/style.css"),
    }
)
#: Pages that get the Content-Security-Policy.
PAGES = frozenset({"/", "/login"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Deepest JSON accepted (a pipeline request is 2 levels, a workflow a dozen).
MAX_JSON_DEPTH = 64
JSON_TYPES = ("application/json",)
#: Routes whose bodies are coral's JSON (``body_limit_bytes``); the rest are inference's.
CORAL_PREFIXES = ("/coral/", "/inference_pipelines/")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
COMMON_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
WILDCARD_ADDRESSES = frozenset({"", "0.0.0.0", "::", "[::]"})


def session_cookie_name(port: int) -> str:
    """The session cookie's name; per port, since browsers share cookies across ports."""
    return f"coral_session_{port}"


def session_value(token: str) -> str:
    """The session cookie's value: derived from the token, so changing the token ends every
    session, and the cookie never holds the token itself."""
    return hmac.new(token.encode(), b"coral serve session v1", hashlib.sha256).hexdigest()


class RequestRefused(Exception):
    """A request this middleware answers itself."""

    def __init__(self, status: int, message: str, headers: tuple = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


@dataclass(frozen=True)
class HostPolicy:
    """Which ``Host`` header values name this server."""

    names: frozenset[str]
    suffixes: tuple[str, ...] = ()
    any_name: bool = False
    any_address: bool = False

    @classmethod
    def for_server(cls, bound: str, allowed: tuple[str, ...]) -> HostPolicy:
        """Loopback names, the bound address (on a wildcard address: any IP literal, the
        machine's host names) and ``allowed`` (``.example.org`` for subdomains, ``*`` any)."""
        names = {"localhost"}
        wildcard = bound in WILDCARD_ADDRESSES
        if wildcard:
            hostname = socket.gethostname().lower()
            names |= {hostname, f"{hostname}.local", socket.getfqdn().lower()}
        else:
            names.add(bound.strip("[]").lower())
        lowered = [a.strip().lower().rstrip(".") for a in allowed if a.strip()]
        return cls(
            names=frozenset(names | {a for a in lowered if not a.startswith(".") and a != "*"}),
            suffixes=tuple(a for a in lowered if a.startswith(".")),
            any_name="*" in lowered,
            any_address=wildcard,
        )

    def allows(self, host_header: str) -> bool:
        name = host_name(host_header)
        if not name:
            return False
        if self.any_name or name in self.names:
            return True
        if any(name.endswith(s) or name == s[1:] for s in self.suffixes):
            return True
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            return False
        # an IP literal cannot be rebound by DNS: loopback always, any on a wildcard bind
        return address.is_loopback or self.any_address


def host_name(host_header: str) -> str:
    """The name part of a ``Host`` header (``[::1]:9001`` -> ``::1``), lower case."""
    value = host_header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else ""
    name, _, port = value.partition(":")
    if port and not port.isdigit():
        return ""
    return name.rstrip(".")


def json_problem(body: bytes) -> str | None:
    """Why ``body`` is not acceptable JSON (syntax, non-finite numbers, nesting), or None."""

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        document = json.loads(body, parse_constant=refuse_constant)
    except RecursionError:
        return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
    except (ValueError, UnicodeDecodeError) as error:
        return f"the body is not JSON ({error})"
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_JSON_DEPTH:
            return f"the JSON body is nested deeper than {MAX_JSON_DEPTH} levels"
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, (dict, list)):
            pending.extend((child, depth + 1) for child in children)
    return None


def _media_type(headers: dict[bytes, bytes]) -> str:
    value = headers.get(b"content-type", b"").decode("latin-1")
    return value.split(";", 1)[0].strip().lower()


def _cookies(headers: dict[bytes, bytes]) -> dict[str, str]:
    cookies = {}
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        name, _, value = part.strip().partition("=")
        if name:
            cookies[name] = value
    return cookies


async def send_error(send: Send, status: int, message: str, headers: tuple = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *COMMON_HEADERS,
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Guard:
    """Wraps the app with the checks above."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        port: int,
        hosts: HostPolicy,
        allowed_origins: tuple[str, ...],
        body_limit: int,
        image_body_limit: int,
    ) -> None:
        self.app = app
        self.token = token.encode() if token else None
        self.session = session_value(token).encode() if token else None
        self.cookie = session_cookie_name(port)
        self.hosts = hosts
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)
        self.body_limit = body_limit
        self.image_body_limit = image_body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        preflight = scope.get("method") == "OPTIONS" and b"access-control-request-method" in headers
        try:
            origin = self._check_origin(scope, headers)
            if not preflight:
                self._check_access(scope, headers)
        except RequestRefused as refused:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": str(refused)})
            else:
                await send_error(send, refused.status, str(refused), refused.headers)
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return
        if preflight:  # answered here, without credentials, as browsers send it
            await self._preflight(send, origin)
            return
        try:
            receive = await self._buffered(scope, headers, receive)
        except RequestRefused as refused:
            await send_error(send, refused.status, str(refused))
            return
        await self.app(scope, receive, self._with_headers(scope, send, origin))

    def _check_origin(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        """Host and origin; the allowed cross origin, if the request has one."""
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.hosts.allows(host):
            raise RequestRefused(
                403, f"Host {host!r} is not this server's: add it to services.serve.allowed_hosts"
            )
        method = scope.get("method", "GET")
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/").lower() or None
        allowed = origin is not None and origin in self.allowed_origins
        foreign = origin is not None and not allowed and origin != f"http://{host.lower()}"
        if foreign and (scope["type"] == "websocket" or method not in SAFE_METHODS):
            raise RequestRefused(403, f"requests from origin {origin!r} are not allowed")
        return origin if allowed else None

    def _check_access(self, scope: Scope, headers: dict[bytes, bytes]) -> None:
        """Token (header or session cookie) and content type."""
        method = scope.get("method", "GET")
        bearer = self._bearer(headers)
        authorised = self.token is None or bearer or self._cookie_ok(headers)
        scope.setdefault("state", {})["coral_authorised"] = authorised
        if not authorised and (method, scope["path"]) not in OPEN_ROUTES:
            if method == "GET" and scope["path"] == "/" and scope["type"] == "http":
                raise RequestRefused(303, "log in first", ((b"location", b"/login"),))
            raise RequestRefused(
                401,
                "missing or wrong token: send Authorization: Bearer <token>, or log in at /login",
                ((b"www-authenticate", b"Bearer"),),
            )
        if method not in SAFE_METHODS and self._has_body(headers):
            ours = scope["path"].startswith(CORAL_PREFIXES)
            if _media_type(headers) not in JSON_TYPES and (ours or not bearer):
                raise RequestRefused(415, "send the body as Content-Type: application/json")

    def _bearer(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return (
            self.token is not None
            and scheme.lower() == b"bearer"
            and hmac.compare_digest(given.strip(), self.token)
        )

    def _cookie_ok(self, headers: dict[bytes, bytes]) -> bool:
        given = _cookies(headers).get(self.cookie)
        return (
            self.session is not None
            and given is not None
            and (hmac.compare_digest(given.encode("latin-1"), self.session))
        )

    @staticmethod
    def _has_body(headers: dict[bytes, bytes]) -> bool:
        return headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers

    async def _preflight(self, send: Send, origin: str | None) -> None:
        if origin is None:
            await send_error(send, 403, "cross-origin requests are not allowed from there")
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    *self._cors_headers(origin),
                    (b"access-control-allow-methods", b"GET, POST, DELETE"),
                    (b"access-control-allow-headers", b"authorization, content-type"),
                    (b"access-control-max-age", b"600"),
                    *COMMON_HEADERS,
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    @staticmethod
    def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]

    async def _buffered(self, scope: Scope, headers: dict[bytes, bytes], receive: Receive) -> Any:
        """The whole body read within its limit and checked; a ``receive`` replaying it."""
        limit = (
            self.body_limit if scope["path"].startswith(CORAL_PREFIXES) else (self.image_body_limit)
        )
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                raise RequestRefused(400, "Content-Length is not a number")
            if int(length) > limit:
                raise RequestRefused(413, f"request body over {limit} bytes")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return receive  # the client went away: let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise RequestRefused(413, f"request body over {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _media_type(headers) in JSON_TYPES:
            problem = json_problem(body)
            if problem:
                raise RequestRefused(400, problem)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return replay

    def _with_headers(self, scope: Scope, send: Send, origin: str | None) -> Send:
        extra = list(COMMON_HEADERS)
        if scope["path"] in PAGES:
            extra.append((b"content-security-policy", CSP.encode()))
        if origin is not None:
            extra.extend(self._cors_headers(origin))

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": [
                        *message.get("headers", []),
                        *(h for h in extra if h[0] not in names),
                    ],
                }
            await send(message)

        return sending
