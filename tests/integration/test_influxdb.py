"""The metric sink against a real InfluxDB 1.x server on 127.0.0.1, including outages."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone

import pytest

from coral_inference.services.metrics.points import DEFAULT_MEASUREMENT, MetricPoint
from coral_inference.services.metrics.stores import InfluxDBStore
from coral_inference.services.metrics.writer import BufferedMetricWriter
from coral_inference.testing.influxdb import (
    InfluxDBServer,
    count_points,
    free_port,
    open_sockets,
    query,
    select_rows,
)

pytestmark = pytest.mark.influxdb

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def make_points(frame_ids: Iterable[int], **kwargs: object) -> list[MetricPoint]:
    values: dict = {"pipeline_id": "pipe", "source_id": 0, "fields": {}} | kwargs
    return [
        MetricPoint(
            values["pipeline_id"],
            values["source_id"],
            i,
            T0 + timedelta(milliseconds=i),  # distinct timestamps: one point per frame
            5.0 + i / 10,
            30.0,
            i % 5,
            values["fields"],
            latency_ms=1.0 + i / 10,
        )
        for i in frame_ids
    ]


def make_writer(url: str, database: str, **kwargs: object) -> BufferedMetricWriter:
    options: dict = {
        "batch_size": 50,
        "flush_seconds": 0.05,
        "retry_initial": 0.05,
        "retry_max": 0.5,
    } | kwargs
    return BufferedMetricWriter(InfluxDBStore(url, database, timeout=2.0), **options)


def stored_frame_ids(url: str, database: str) -> list[int]:
    rows = select_rows(url, database, f"SELECT frame_id FROM {DEFAULT_MEASUREMENT}")
    return sorted(row["frame_id"] for row in rows)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_server_is_private_and_loopback_only(
    influxdb_server: InfluxDBServer, influxdb_database: str
) -> None:
    config = influxdb_server.config_path.read_text()
    assert "reporting-disabled = true" in config and "reporting-enabled = false" in config
    effective = subprocess.run(
        [influxdb_server.binary, "config", "-config", str(influxdb_server.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    # Debian's build knows only reporting-enabled, upstream's only reporting-disabled.
    assert "reporting-enabled = false" in effective or "reporting-disabled = true" in effective
    workdir = str(influxdb_server.config_path.parent)
    dirs = [line.split("=", 1)[1].strip() for line in effective.splitlines() if "dir =" in line]
    assert len(dirs) == 3 and all(d.strip('"').startswith(workdir) for d in dirs)

    make_writer(influxdb_server.url, influxdb_database).close()  # some traffic first
    assert influxdb_server.process is not None
    sockets = open_sockets(influxdb_server.process.pid)
    assert sockets, "influxd should at least listen"
    assert all(s.is_loopback_only for s in sockets), sockets


def test_points_round_trip_with_escaping(influxdb_url: str, influxdb_database: str) -> None:
    fields = {"label": 'say "hi" \\o/', "model id": "yolo, v8=x", "ok": True, "n": 3, "c": 0.25}
    tricky = make_points(range(3), pipeline_id="line 1,zone=A", source_id="rtsp://cam 2/s?a=b,c")
    plain = make_points(range(3, 5), fields=fields)
    with make_writer(influxdb_url, influxdb_database) as writer:
        for p in tricky + plain:
            writer.submit(p)
    assert writer.stats.written == 5

    rows = select_rows(influxdb_url, influxdb_database, f"SELECT * FROM {DEFAULT_MEASUREMENT}")
    assert [row["time"] for row in rows] == [p.timestamp_ns for p in tricky + plain]
    for row, p in zip(rows, tricky + plain, strict=True):
        assert (row["pipeline_id"], row["source_id"]) == (p.pipeline_id, str(p.source_id))
        assert (row["frame_id"], row["detections"]) == (p.frame_id, p.detections)
        assert (row["end_to_end_ms"], row["latency_ms"]) == (p.end_to_end_ms, p.latency_ms)
        assert row["fps"] == p.fps
    for row in rows[3:]:
        assert {key: row[key] for key in fields} == fields


def test_backslashes_in_tags_parse(influxdb_url: str, influxdb_database: str) -> None:
    store = InfluxDBStore(influxdb_url, influxdb_database)
    store.write(make_points([1], pipeline_id="C:\\cams\\", source_id="x\\,y"))
    store.close()
    rows = select_rows(influxdb_url, influxdb_database, f"SELECT * FROM {DEFAULT_MEASUREMENT}")
    assert len(rows) == 1
    assert rows[0]["pipeline_id"] == "C:\\cams"  # the trailing backslash cannot be carried
    # x\,y goes out as x\\\,y: InfluxDB 1.x reads back x\\,y, spec-following parsers x\,y
    assert rows[0]["source_id"] in ("x\\\\,y", "x\\,y")


def test_fresh_server_gets_its_database_created(
    influxdb_server_factory: Callable[..., InfluxDBServer], influxdb_database: str
) -> None:
    server = influxdb_server_factory(fresh=True).start()
    with make_writer(server.url, influxdb_database) as writer:
        for p in make_points(range(30)):
            writer.submit(p)
    assert (writer.stats.written, writer.stats.rejected, writer.stats.pending) == (30, 0, 0)
    assert stored_frame_ids(server.url, influxdb_database) == list(range(30))


def test_missing_database_without_create_is_kept_and_retried_with_the_reason(
    influxdb_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = InfluxDBStore(influxdb_url, "no_such_db", timeout=2.0, create_database=False)
    with caplog.at_level(logging.WARNING):
        writer = BufferedMetricWriter(store, batch_size=10, flush_seconds=0.05, retry_max=0.2)
        for p in make_points(range(30)):
            writer.submit(p)
        wait_for(lambda: writer.stats.failures >= 3)
        writer.close(timeout=0.5)
    stats = writer.stats
    assert (stats.written, stats.rejected, stats.dropped, stats.pending) == (0, 0, 0, 30)
    assert "database not found" in (stats.last_error or "")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    outage = [w for w in warnings if "unavailable" in w]  # once, not per retry
    assert len(outage) == 1 and "database not found" in outage[0], warnings
    assert any("30 points unwritten" in w for w in warnings), warnings


def test_unauthorised_points_are_kept_and_retried_with_the_reason(
    influxdb_server_factory: Callable[..., InfluxDBServer], influxdb_database: str
) -> None:
    server = influxdb_server_factory(auth_enabled=True).start()
    # With a user defined, InfluxDB 1.x answers requests without valid credentials with 401.
    query(server.url, "CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES")
    writer = make_writer(server.url, influxdb_database)
    for p in make_points(range(20)):
        writer.submit(p)
    wait_for(lambda: writer.stats.failures >= 2)
    writer.close(timeout=0.5)
    stats = writer.stats
    assert (stats.written, stats.rejected, stats.pending) == (0, 0, 20)
    assert "HTTP 401" in (stats.last_error or "") and "token" in (stats.last_error or "")


def test_partial_write_counts_refused_points(influxdb_url: str, influxdb_database: str) -> None:
    writer = make_writer(influxdb_url, influxdb_database, flush_seconds=60)
    writer.submit(make_points([0], fields={"mode": 1})[0])
    writer.close()
    writer = make_writer(influxdb_url, influxdb_database, flush_seconds=60)
    for i in range(1, 4):
        writer.submit(make_points([i], fields={"mode": "text" if i == 2 else i})[0])
    writer.close()
    assert (writer.stats.written, writer.stats.rejected) == (2, 1)
    assert stored_frame_ids(influxdb_url, influxdb_database) == [0, 1, 3]


def test_writer_started_before_server_loses_nothing(
    influxdb_server_factory: Callable[..., InfluxDBServer], influxdb_database: str
) -> None:
    server = influxdb_server_factory(port=free_port())  # nothing listens there yet
    writer = make_writer(server.url, influxdb_database)
    submitted = 0
    started = time.monotonic()
    while time.monotonic() - started < 2.0:  # ~2 s of frames while the server is down
        for p in make_points(range(submitted, submitted + 20)):
            writer.submit(p)
        submitted += 20
        time.sleep(0.05)
    assert writer.stats.written == 0 and writer.stats.failures > 0
    server.start()
    for p in make_points(range(submitted, submitted + 200)):
        writer.submit(p)
    submitted += 200
    writer.close(timeout=30)

    stats = writer.stats
    assert (stats.written, stats.dropped, stats.rejected, stats.pending) == (submitted, 0, 0, 0)
    assert count_points(server.url, influxdb_database, DEFAULT_MEASUREMENT) == submitted
    assert stored_frame_ids(server.url, influxdb_database) == list(range(submitted))


def test_overflow_while_down_keeps_the_newest(
    influxdb_server_factory: Callable[..., InfluxDBServer], influxdb_database: str
) -> None:
    server = influxdb_server_factory(port=free_port())
    writer = make_writer(server.url, influxdb_database, buffer_max=100)
    for p in make_points(range(250)):
        writer.submit(p)
    wait_for(lambda: writer.stats.failures >= 1)
    stats = writer.stats
    assert (stats.dropped, stats.pending, stats.written) == (150, 100, 0)

    server.start()
    writer.close(timeout=30)
    stats = writer.stats
    assert (stats.written, stats.dropped, stats.pending) == (100, 150, 0)
    assert stored_frame_ids(server.url, influxdb_database) == list(range(150, 250))


def test_server_never_up_leaves_newest_pending_at_close() -> None:
    writer = make_writer(f"http://127.0.0.1:{free_port()}", "coral", buffer_max=100)
    for p in make_points(range(250)):
        writer.submit(p)
    started = time.monotonic()
    writer.close(timeout=1.0)
    assert time.monotonic() - started < 5.0
    stats = writer.stats
    assert (stats.written, stats.dropped, stats.pending) == (0, 150, 100)
    assert stats.failures >= 1 and "ConnectionRefused" in (stats.last_error or "")


def test_server_restart_mid_run(
    influxdb_server_factory: Callable[..., InfluxDBServer], influxdb_database: str
) -> None:
    port = free_port()
    first = influxdb_server_factory(port=port).start()
    writer = make_writer(first.url, influxdb_database)
    for p in make_points(range(100)):
        writer.submit(p)
    wait_for(lambda: writer.stats.written == 100)
    first.stop()  # the writer's kept-alive connection dies with it

    for p in make_points(range(100, 300)):
        writer.submit(p)
    wait_for(lambda: writer.stats.failures >= 2)
    second = influxdb_server_factory(port=port).start()  # fresh, empty server on the same port
    writer.close(timeout=30)
    assert (writer.stats.written, writer.stats.dropped, writer.stats.pending) == (300, 0, 0)
    assert stored_frame_ids(second.url, influxdb_database) == list(range(100, 300))


def test_coral_serve_reads_a_pipelines_series_back_with_its_time_window(
    influxdb_url: str, influxdb_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``GET /coral/metrics/{id}?since=&until=`` answers with ``store: influxdb``."""
    from coral_inference.app.serve.metrics import SeriesReader

    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # a proxy that would refuse: unused
    quoted = "cam 'north', gate=1"
    with make_writer(influxdb_url, influxdb_database) as writer:
        for point in make_points(range(10), pipeline_id=quoted) + make_points(range(10, 14)):
            writer.submit(point)
    reader = SeriesReader({"store": "influxdb", "url": influxdb_url, "database": influxdb_database})

    series = reader.series(quoted, None, None)
    assert [row["frame_id"] for row in series] == list(range(10))
    assert series[0]["time"] == "2024-05-06T07:08:09.000Z"
    assert series[3]["latency_ms"] == pytest.approx(1.3) and series[3]["fps"] == 30.0
    assert series[3]["end_to_end_ms"] == pytest.approx(5.3)
    assert series[3]["detections"] == 3
    window = reader.series(quoted, T0 + timedelta(milliseconds=2), T0 + timedelta(milliseconds=5))
    assert [row["frame_id"] for row in window] == [2, 3, 4, 5]
    assert [row["frame_id"] for row in reader.series("pipe", None, None)] == [10, 11, 12, 13]
    assert reader.series("no such pipeline", None, None) == []
