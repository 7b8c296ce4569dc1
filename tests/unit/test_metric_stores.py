"""SqliteMetricStore and InfluxDBStore (the latter against a scripted local HTTP server)."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from coral_inference.services.metrics.points import FieldValue, MetricPoint
from coral_inference.services.metrics.stores import (
    InfluxDBStore,
    SqliteMetricStore,
    StoreRejected,
    StoreUnavailable,
    is_legacy_frames_table,
)
from coral_inference.testing.influxdb import free_port

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def make_points(count: int, **fields: FieldValue) -> list[MetricPoint]:
    return [
        MetricPoint(
            "pipe",
            "cam 1",
            i,
            T0,
            10.0 + i,
            30.0,
            i % 4,
            dict(fields),
            latency_ms=None if i % 7 == 0 else 2.0 + i / 8,
        )
        for i in range(count)
    ]


# --- SQLite --------------------------------------------------------------------------------


def test_sqlite_rows_equal_points(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "metrics.db"
    store = SqliteMetricStore(path)
    points = make_points(250, model="yolo", conf=0.5)
    store.write(points[:200])
    store.write(points[200:])
    store.close()

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = conn.execute(
            "SELECT pipeline_id, source_id, frame_id, timestamp_ns, end_to_end_ms, latency_ms, fps,"
            " detections, fields FROM frames ORDER BY id"
        ).fetchall()
    assert len(rows) == len(points)
    for row, p in zip(rows, points, strict=True):
        assert row[:8] == (
            p.pipeline_id,
            str(p.source_id),
            p.frame_id,
            p.timestamp_ns,
            p.end_to_end_ms,
            p.latency_ms,
            p.fps,
            p.detections,
        )
        assert json.loads(row[8]) == {"model": "yolo", "conf": 0.5}


def test_sqlite_reopens_existing_database(tmp_path: Path) -> None:
    for _ in range(2):
        store = SqliteMetricStore(tmp_path / "m.db")
        store.write(make_points(3))
        store.close()
    with sqlite3.connect(tmp_path / "m.db") as conn:
        assert conn.execute("SELECT count(*), min(fields) FROM frames").fetchone() == (6, "{}")


# Table frames as coral created it before end_to_end_ms: latency_ms held capture-to-result times.
OLD_SCHEMA = """
    CREATE TABLE frames (
        id INTEGER PRIMARY KEY,
        pipeline_id TEXT NOT NULL,
        source_id TEXT NOT NULL,
        frame_id INTEGER NOT NULL,
        timestamp_ns INTEGER NOT NULL,
        latency_ms REAL,
        fps REAL,
        detections INTEGER NOT NULL,
        fields TEXT NOT NULL
    )
"""


def make_old_database(path: Path, rows: int = 3) -> None:
    """A database file of the old schema whose rows' ``latency_ms`` are 100.0, 101.0, ..."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(OLD_SCHEMA)
        conn.executemany(
            "INSERT INTO frames (pipeline_id, source_id, frame_id, timestamp_ns, latency_ms, fps,"
            " detections, fields) VALUES ('old', '0', ?, 0, ?, 30.0, 0, '{}')",
            [(i, 100.0 + i) for i in range(rows)],
        )
    conn.close()


def test_sqlite_migrates_the_old_schema_keeping_its_meaning(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_old_database(path)
    with sqlite3.connect(path) as conn:
        assert is_legacy_frames_table(conn)
    for _ in range(2):  # the second open finds the database migrated
        store = SqliteMetricStore(path)
        store.write(make_points(2))
        store.close()

    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(frames)")]
    assert not is_legacy_frames_table(conn)
    rows = conn.execute(
        "SELECT pipeline_id, frame_id, end_to_end_ms, latency_ms FROM frames ORDER BY id"
    ).fetchall()
    conn.close()
    assert columns.count("end_to_end_ms") == columns.count("latency_ms") == 1
    assert rows[:3] == [("old", i, 100.0 + i, None) for i in range(3)]  # end-to-end times kept
    new = [("pipe", p.frame_id, p.end_to_end_ms, p.latency_ms) for p in make_points(2)]
    assert rows[3:] == new * 2


def _open_and_write(path: str, start: Barrier) -> None:
    start.wait()
    store = SqliteMetricStore(path, timeout=30)
    store.write(make_points(2))
    store.close()


def test_sqlite_migration_is_safe_when_processes_open_the_old_database_at_once(
    tmp_path: Path,
) -> None:
    """serve's pipeline processes open one database at once: each must come up writing."""
    path = tmp_path / "old.db"
    make_old_database(path)
    context = multiprocessing.get_context("fork")
    start = context.Barrier(4)
    workers = [context.Process(target=_open_and_write, args=(str(path), start)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0] * 4
    conn = sqlite3.connect(path)
    counts = conn.execute(
        "SELECT count(*), count(end_to_end_ms), count(latency_ms), sum(pipeline_id = 'old')"
        " FROM frames"
    ).fetchone()
    conn.close()
    assert counts == (3 + 4 * 2, 3 + 4 * 2, 4, 3)


def test_sqlite_locked_database_is_unavailable(tmp_path: Path) -> None:
    store = SqliteMetricStore(tmp_path / "m.db", timeout=0.1)
    blocker = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            store.write(make_points(1))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    store.write(make_points(1))  # usable again once the lock is gone
    store.close()


# --- InfluxDB over HTTP ----------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 204
    body: bytes = b""
    delay: float = 0.0
    hang_up: bool = False  # close the connection after replying, without saying so


@dataclass
class FakeInflux:
    """Records requests; answers with the scripted replies in order (then 204)."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)


@pytest.fixture
def fake_influx() -> Iterator[FakeInflux]:
    fake = FakeInflux(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            fake.requests.append((self.path, dict(self.headers), body))
            fake.client_ports.append(self.client_address[1])
            reply = fake.replies.pop(0) if fake.replies else Reply()
            time.sleep(reply.delay)
            self.send_response(reply.status)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
            self.close_connection = reply.hang_up

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_influx_posts_line_protocol(fake_influx: FakeInflux) -> None:
    store = InfluxDBStore(fake_influx.url + "/prefix/", "my db", token="s3cret", measurement="m")
    points = make_points(3)
    store.write(points)
    store.write(points[:1])
    store.close()

    assert len(fake_influx.requests) == 2
    path, headers, body = fake_influx.requests[0]
    assert path == "/prefix/write?db=my+db&precision=ns"
    assert headers["Authorization"] == "Token s3cret"
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.decode().split("\n") == [p.to_line_protocol("m") for p in points]


def test_influx_gzip_and_no_token(fake_influx: FakeInflux) -> None:
    store = InfluxDBStore(fake_influx.url, "db", gzip=True)
    store.write(make_points(2))
    store.close()
    _, headers, body = fake_influx.requests[0]
    assert headers["Content-Encoding"] == "gzip"
    assert "Authorization" not in headers
    assert gzip.decompress(body).decode() == "\n".join(p.to_line_protocol() for p in make_points(2))


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_influx_retryable_statuses_are_unavailable(fake_influx: FakeInflux, status: int) -> None:
    fake_influx.replies.append(Reply(status, b'{"error":"busy"}'))
    store = InfluxDBStore(fake_influx.url, "db")
    with pytest.raises(StoreUnavailable, match=f"HTTP {status}.*busy"):
        store.write(make_points(1))
    store.write(make_points(1))
    store.close()


def test_influx_malformed_points_are_rejected(fake_influx: FakeInflux) -> None:
    fake_influx.replies.append(Reply(400, b'{"error":"unable to parse \'x\': bad timestamp"}\n'))
    store = InfluxDBStore(fake_influx.url, "db")
    with pytest.raises(StoreRejected, match="HTTP 400.*unable to parse") as caught:
        store.write(make_points(5))
    assert caught.value.dropped is None
    store.close()


@pytest.mark.parametrize("status", [401, 403, 404])
def test_influx_auth_and_missing_database_are_unavailable(
    fake_influx: FakeInflux, status: int
) -> None:
    fake_influx.replies.append(Reply(status, b'{"error":"database not found: \\"db\\""}\n'))
    store = InfluxDBStore(fake_influx.url, "db", create_database=False)
    with pytest.raises(StoreUnavailable, match=f"HTTP {status}"):
        store.write(make_points(5))
    store.close()


def test_influx_partial_write_reports_dropped_count(fake_influx: FakeInflux) -> None:
    error = b'{"error":"partial write: field type conflict: input field \\"x\\" dropped=2"}'
    fake_influx.replies.append(Reply(400, error))
    store = InfluxDBStore(fake_influx.url, "db")
    with pytest.raises(StoreRejected, match="partial write") as caught:
        store.write(make_points(5))
    assert caught.value.dropped == 2
    store.close()


def test_influx_connection_refused_is_unavailable() -> None:
    store = InfluxDBStore(f"http://127.0.0.1:{free_port()}", "db", timeout=2.0)
    with pytest.raises(StoreUnavailable, match="ConnectionRefused"):
        store.write(make_points(1))
    store.close()


def test_influx_timeout_is_unavailable(fake_influx: FakeInflux) -> None:
    fake_influx.replies.append(Reply(delay=1.0))
    store = InfluxDBStore(fake_influx.url, "db", timeout=0.2)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="timed out"):
        store.write(make_points(1))
    assert time.monotonic() - started < 0.9  # no silent second try after a timeout
    store.close()


def test_influx_reconnects_after_server_drops_idle_connection(fake_influx: FakeInflux) -> None:
    fake_influx.replies.append(Reply(hang_up=True))
    store = InfluxDBStore(fake_influx.url, "db")
    for _ in range(3):
        store.write(make_points(1))
        time.sleep(0.05)  # let the hang-up reach the client socket
    store.close()
    first, second, third = fake_influx.client_ports
    assert first != second == third  # a fresh connection after the hang-up, then kept alive


def test_influx_url_is_validated() -> None:
    with pytest.raises(ValueError, match="http"):
        InfluxDBStore("localhost:8086", "db")
    with pytest.raises(ValueError, match="token"):
        InfluxDBStore("http://user:pw@localhost:8086", "db")
