"""diagnose_stream against real sockets on 127.0.0.1 that answer as cameras do."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from coral_inference.app.stream_diagnosis import diagnose_stream
from coral_inference.testing.influxdb import free_port

pytestmark = pytest.mark.core


class Camera:
    """A TCP server on 127.0.0.1 answering each request with ``answer`` (None: silence)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.answer: bytes | None = None
        self.requests: list[str] = []
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, credentials: str = "") -> str:
        return f"rtsp://{credentials}127.0.0.1:{self.port}/stream"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.held.append(connection)
            self.requests.append(connection.recv(4096).decode())
            if self.answer is not None:
                connection.sendall(self.answer)

    def close(self) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


@pytest.fixture
def camera() -> Iterator[Camera]:
    camera = Camera()
    yield camera
    camera.close()


@pytest.mark.parametrize(
    ("status", "credentials", "expected"),
    [
        (b"404 Not Found", "", "no stream at /stream (RTSP 404 Not Found): check the stream path"),
        (b"401 Unauthorized", "", "asks for credentials (RTSP 401): put them in the URL"),
        (b"401 Unauthorized", "bob:secret@", "check the user and password in the URL"),
        (b"200 OK", "", "answers at /stream but sent no video frames"),
        (b"503 Service Unavailable", "", "answered RTSP 503 Service Unavailable"),
    ],
)
def test_the_camera_answer_is_put_in_words(camera, status, credentials, expected) -> None:
    camera.answer = b"RTSP/1.0 " + status + b"\r\nCSeq: 1\r\n\r\n"
    reason = diagnose_stream(camera.url(credentials))
    assert reason is not None and expected in reason
    request = camera.requests[0]
    assert request.startswith(f"DESCRIBE rtsp://127.0.0.1:{camera.port}/stream RTSP/1.0")
    assert "secret" not in request and "bob" not in request  # credentials never sent in clear


def test_a_server_that_accepts_and_says_nothing(camera) -> None:
    reason = diagnose_stream(camera.url(), timeout=0.5)
    assert reason is not None and "accepted the connection but did not answer" in reason


def test_nothing_listening_and_not_rtsp() -> None:
    reason = diagnose_stream(f"rtsp://127.0.0.1:{free_port()}/x")
    assert reason is not None and reason.startswith("nothing listens at 127.0.0.1:")
    assert diagnose_stream("http://127.0.0.1/x.mjpg") is None
    assert diagnose_stream("/videos/door.mp4") is None
