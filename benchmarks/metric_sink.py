"""Benchmark of the metric sink: sustained points/s through BufferedMetricWriter.

Run ``python benchmarks/metric_sink.py``. For SQLite (a temporary file) and InfluxDB (an
``influxd`` this script starts on 127.0.0.1; skipped when it is not installed) the same points
go through ``BufferedMetricWriter`` (submit all, then ``close()``; the buffer holds them all, so
nothing is dropped), timed from the first submit until every point is stored. Each is compared
with the target (50k points/s) and with a same-run baseline doing the bare store operation in
the same batches: ``executemany`` of pre-built rows, or HTTP POSTs of pre-formatted lines.
Runs alternate (ours, raw, ours, ...; each InfluxDB run on a fresh server) and the best counts,
which damps the noise of other work on the machine.
"""

from __future__ import annotations

import argparse
import http.client
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from coral_inference.services.metrics.points import DEFAULT_MEASUREMENT, FieldValue, MetricPoint
from coral_inference.services.metrics.stores import InfluxDBStore, SqliteMetricStore
from coral_inference.services.metrics.writer import BufferedMetricWriter
from coral_inference.testing.influxdb import InfluxDBServer, count_points, find_influxd

TARGET = 50_000.0
RAW_INSERT = (
    "INSERT INTO frames (pipeline_id, source_id, frame_id, timestamp_ns, end_to_end_ms,"
    " latency_ms, fps, detections, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
T0 = datetime(2024, 5, 6, tzinfo=timezone.utc)


def make_points(count: int) -> list[MetricPoint]:
    """Distinct frames of one source with two extra fields, one microsecond apart."""
    fields: dict[str, FieldValue] = {"model_id": "yolov8n-640/3", "max_confidence": 0.87}
    return [
        MetricPoint(
            "pipeline-0",
            "rtsp://camera-1.local/stream 1",
            i,
            T0 + timedelta(microseconds=i),
            12.5 + (i % 7),
            29.97,
            i % 9,
            fields,
            latency_ms=4.5 + (i % 3),
        )
        for i in range(count)
    ]


def through_writer(writer: BufferedMetricWriter, points: list[MetricPoint]) -> float:
    """Seconds to submit ``points`` and close the writer once all are written."""
    started = time.perf_counter()
    for point in points:
        writer.submit(point)
    writer.close(timeout=300)
    elapsed = time.perf_counter() - started
    stats = writer.stats
    if (stats.written, stats.dropped, stats.rejected) != (len(points), 0, 0):
        raise RuntimeError(f"not every point was written: {stats}")
    return elapsed


def sqlite_ours(points: list[MetricPoint], batch_size: int, path: Path) -> float:
    writer = BufferedMetricWriter(
        SqliteMetricStore(path), batch_size=batch_size, buffer_max=len(points)
    )
    elapsed = through_writer(writer, points)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM frames").fetchone() == (len(points),)
    return elapsed


def sqlite_raw(points: list[MetricPoint], batch_size: int, path: Path) -> float:
    SqliteMetricStore(path).close()  # same schema and pragmas
    rows = [
        (p.pipeline_id, str(p.source_id), p.frame_id, p.timestamp_ns, p.end_to_end_ms,
         p.latency_ms, p.fps, p.detections, '{"model_id":"yolov8n-640/3","max_confidence":0.87}')
        for p in points
    ]  # fmt: skip
    conn = sqlite3.connect(path)
    started = time.perf_counter()
    for i in range(0, len(rows), batch_size):
        with conn:
            conn.executemany(RAW_INSERT, rows[i : i + batch_size])
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def influxdb_ours(points: list[MetricPoint], batch_size: int) -> float:
    with InfluxDBServer(databases=["bench"]) as server:
        store = InfluxDBStore(server.url, "bench")
        writer = BufferedMetricWriter(store, batch_size=batch_size, buffer_max=len(points))
        elapsed = through_writer(writer, points)
        assert count_points(server.url, "bench", DEFAULT_MEASUREMENT) == len(points)
    return elapsed


def influxdb_raw(points: list[MetricPoint], batch_size: int) -> float:
    lines = [p.to_line_protocol() for p in points]
    bodies = [
        "\n".join(lines[i : i + batch_size]).encode() for i in range(0, len(lines), batch_size)
    ]
    with InfluxDBServer(databases=["bench"]) as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        started = time.perf_counter()
        for body in bodies:
            conn.request("POST", "/write?db=bench&precision=ns", body)
            response = conn.getresponse()
            response.read()
            if response.status != 204:
                raise RuntimeError(f"raw write failed: HTTP {response.status}")
        elapsed = time.perf_counter() - started
        conn.close()
        assert count_points(server.url, "bench", DEFAULT_MEASUREMENT) == len(points)
    return elapsed


def best_of(
    repeat: int, ours: Callable[[], float], raw: Callable[[], float]
) -> tuple[float, float]:
    """The shortest (ours, raw) seconds over ``repeat`` interleaved runs."""
    runs = [(ours(), raw()) for _ in range(repeat)]
    return min(o for o, _ in runs), min(r for _, r in runs)


def report(name: str, count: int, ours: float, raw: float) -> None:
    rate, raw_rate = count / ours, count / raw
    ratios = f"{rate / TARGET:>9.2f}x {raw_rate:>14,.0f} {rate / raw_rate:>9.2f}"
    print(f"{name:<9} {rate:>12,.0f} {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="runs each; the best one counts")
    args = parser.parse_args()
    count, batch, repeat = args.points, args.batch_size, args.repeat

    started = time.perf_counter()
    points = make_points(count)
    built = time.perf_counter() - started
    print(f"{count:,} points, batch {batch}, best of {repeat}; target {TARGET:,.0f} points/s")
    print(f"building the MetricPoints (caller side): {count / built:,.0f} points/s\n")
    print(f"{'store':<9} {'ours pts/s':>12} {'vs target':>10} {'raw pts/s':>14} {'ours/raw':>9}")
    with tempfile.TemporaryDirectory(prefix="coral-metric-bench-") as tmp:
        paths = (Path(tmp) / f"{i}.db" for i in range(2 * repeat))
        ours, raw = best_of(
            repeat,
            lambda: sqlite_ours(points, batch, next(paths)),
            lambda: sqlite_raw(points, batch, next(paths)),
        )
    report("sqlite", count, ours, raw)
    if find_influxd() is None:
        print("influxdb  skipped: influxd not installed (apt-get install -y influxdb)")
        return
    ours, raw = best_of(
        repeat, lambda: influxdb_ours(points, batch), lambda: influxdb_raw(points, batch)
    )
    report("influxdb", count, ours, raw)


if __name__ == "__main__":
    main()
