"""Why an RTSP stream gave no frames, in words a camera owner can act on.

When ``inference`` cannot open a stream it says only "Cannot connect to video source"; FFmpeg's
own reason (404, 401, ...) goes to the process's stderr among other lines. This asks the
camera itself, once, after the failure: an RTSP ``DESCRIBE`` without credentials, whose status
tells a wrong path (404) from missing or refused credentials (401) from a server that answers
but sends no video (200).
"""

from __future__ import annotations

import socket
import urllib.parse

RTSP_DEFAULT_PORT = 554


class _Silent(Exception):
    """The server accepted the connection and then said nothing."""


def diagnose_stream(url: str, timeout: float = 5.0) -> str | None:
    """One sentence on why ``url`` gave no frames, or None when it is no RTSP URL or the
    camera's answer says nothing more."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
        return None
    if parts.scheme == "rtsps":
        return None  # a TLS handshake is FFmpeg's business; the generic reason stands
    address = f"{parts.hostname}:{parts.port or RTSP_DEFAULT_PORT}"
    try:
        status = _describe_status(parts, timeout)
    except ConnectionRefusedError:
        return f"nothing listens at {address}: check the camera's address and RTSP port"
    except _Silent:
        return (
            f"{address} accepted the connection but did not answer an RTSP request within "
            f"{timeout:g} s: is it an RTSP server?"
        )
    except TimeoutError:
        return f"{address} did not answer within {timeout:g} s: check the address and network"
    except OSError as exc:
        return f"cannot reach {address}: {exc.strerror or exc}"
    if status is None:
        return f"{address} does not speak RTSP"
    code, reason = status
    path = parts.path or "/"
    if code == 404:
        return f"the camera has no stream at {path} (RTSP 404 {reason}): check the stream path"
    if code == 401:
        if parts.username:
            return (
                "the camera refused the connection and asks for credentials (RTSP 401): check "
                "the user and password in the URL"
            )
        return (
            "the camera asks for credentials (RTSP 401): put them in the URL, "
            "rtsp://USER:PASSWORD@host/path"
        )
    if 200 <= code < 300:
        return f"the camera answers at {path} but sent no video frames"
    return f"the camera answered RTSP {code} {reason}"


def _describe_status(parts: urllib.parse.SplitResult, timeout: float) -> tuple[int, str] | None:
    host = parts.hostname or ""
    port = parts.port or RTSP_DEFAULT_PORT
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    target = urllib.parse.urlunsplit(("rtsp", netloc, parts.path or "/", parts.query, ""))
    request = (
        f"DESCRIBE {target} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n"
        "User-Agent: coral-inference\r\n\r\n"
    )
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(request.encode())
        try:
            answer = connection.recv(4096).decode("latin-1")
        except TimeoutError:
            raise _Silent from None
    status_line = answer.split("\r\n", 1)[0].split(" ", 2)
    if (
        len(status_line) < 2
        or not status_line[0].startswith("RTSP/")
        or not status_line[1].isdigit()
    ):
        return None
    return int(status_line[1]), status_line[2] if len(status_line) > 2 else ""
