"""Taking an address for a server of ``coral`` (``coral serve``, ``coral run --preview``):
binding, the one wording and exit status when that fails, and the uvicorn server both run."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from typing import Any

from coral_inference.app import exit_codes

#: A server that cannot listen did not start.
EXIT_CODE = exit_codes.CANNOT_START


class CannotListen(RuntimeError):
    """The address cannot be bound (in use, unknown host, not permitted)."""


def cannot_listen(host: str, port: int, error: BaseException | str) -> str:
    """``cannot listen on HOST:PORT: REASON``, with what to do when the port is taken; the
    reason of an ``OSError`` is its errno's text (servers wrap it in words of their own)."""
    number = getattr(error, "errno", None)
    reason = os.strerror(number) if isinstance(number, int) else str(error) or "timed out"
    advice = "; another program uses it: choose another port" if "in use" in reason else ""
    return f"cannot listen on {shown_host(host)}:{port}: {reason}{advice}"


def shown_host(host: str) -> str:
    """``host`` as it is written before ``:PORT`` (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one); CannotListen if it can't."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise CannotListen(cannot_listen(host, port, error.strerror or str(error))) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise CannotListen(cannot_listen(host, port, error)) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def quiet_server(config: Any) -> Any:
    """A uvicorn server that leaves SIGINT/SIGTERM to its owner (uvicorn's own handling
    re-raises the signal once it stopped, which would kill the process before the pipelines
    are stopped and make the exit status the signal's)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    return Server(config)
