"""A port another program holds: ``coral serve`` and ``coral run --preview`` say it the same way
and exit 1 ("could not start"). Not marked ``integration``: coral's own message, the same on
every inference line (the tox env ``inference054`` runs it)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

pytest.importorskip("inference")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def taken_port() -> Iterator[int]:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    yield holder.getsockname()[1]
    holder.close()


def test_serve_and_run_preview_on_a_taken_port(coral, taken_port: int) -> None:
    said = (
        f"cannot listen on 127.0.0.1:{taken_port}: Address already in use; another program uses it"
    )
    serve = coral("serve", "--port", str(taken_port))
    assert serve.returncode == 1 and said in serve.stderr, serve.stderr
    run = coral("run", "--demo", "--max-frames", "2", "--preview", f"127.0.0.1:{taken_port}")
    assert run.returncode == 1 and said in run.stderr, run.stderr
    for result in (serve, run):
        assert "Traceback" not in result.stderr and "Usage:" not in result.stderr
