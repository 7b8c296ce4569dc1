"""The pipeline store: restart policies, and a store written before they existed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coral_inference.app.serve.store import PipelineRecord, PipelineStore, default_restart

pytestmark = pytest.mark.core


def test_a_store_from_before_restart_policies_gains_them(tmp_path: Path) -> None:
    path = tmp_path / "serve.db"
    with sqlite3.connect(path) as connection:
        connection.execute(
            "CREATE TABLE pipelines (pipeline_id TEXT PRIMARY KEY, name TEXT NOT NULL,"
            " model TEXT NOT NULL, source TEXT NOT NULL, max_fps REAL, created REAL NOT NULL)"
        )
        connection.execute("INSERT INTO pipelines VALUES ('f', 'f', 'm', '/v.mp4', NULL, 1)")
        connection.execute("INSERT INTO pipelines VALUES ('c', 'c', 'm', 'rtsp://cam/s', 5, 2)")
    store = PipelineStore(path)
    try:
        file, camera = store.all()
        assert (file.restart, file.state, camera.restart) == ("on-failure", "running", "always")
        store.set_state("f", "ended")
        assert not store.all()[0].starts_again() and store.all()[1].starts_again()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("restart", "state", "again"),
    [
        ("always", "ended", True),
        ("on-failure", "ended", False),
        ("on-failure", "failed", True),
        ("on-failure", "running", True),
        ("never", "running", False),
    ],
)
def test_starts_again(restart: str, state: str, again: bool) -> None:
    record = PipelineRecord("p", "p", "m", "/v.mp4", None, 1.0, restart=restart, state=state)
    assert record.starts_again() is again


@pytest.mark.parametrize(
    ("source", "policy"),
    [
        ("/v.mp4", "on-failure"),
        ("rtsp://c/s", "always"),
        ("0", "always"),
        ("/dev/video0", "always"),
    ],
)
def test_default_restart(source: str, policy: str) -> None:
    assert default_restart(source) == policy
