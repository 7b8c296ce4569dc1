"""``GET /coral/metrics/{id}?since=&until=`` on the SQLite store: the window is exact to the
nanosecond (the InfluxDB store's twin runs against a real influxd in test_influxdb.py)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from coral_inference.app.serve.metrics import SeriesReader
from coral_inference.services.metrics.points import MetricPoint
from coral_inference.services.metrics.stores import SqliteMetricStore

pytestmark = pytest.mark.core

T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc)


def test_window_bounds_are_inclusive_and_exact(tmp_path):
    path = tmp_path / "metrics.db"
    store = SqliteMetricStore(path)
    store.write(
        [
            MetricPoint("cam", 0, i, T0 + timedelta(milliseconds=i), 5.0, 30.0, i, latency_ms=1.5)
            for i in range(10)
        ]
    )
    store.close()
    reader = SeriesReader({"store": "sqlite", "path": str(path)})

    window = reader.series("cam", T0 + timedelta(milliseconds=2), T0 + timedelta(milliseconds=5))
    assert [row["frame_id"] for row in window] == [2, 3, 4, 5]
    assert window[0]["time"] == "2024-05-06T07:08:09.002Z"
    assert (window[0]["latency_ms"], window[0]["end_to_end_ms"]) == (1.5, 5.0)
    assert reader.series("other", None, None) == []
    assert (
        SeriesReader({"store": "sqlite", "path": str(tmp_path / "none.db")}).series(
            "cam", None, None
        )
        == []
    )


def test_a_database_not_yet_migrated_reads_as_end_to_end_times(tmp_path):
    """Serve reads before any pipeline process opened (and migrated) an old database."""
    path = tmp_path / "metrics.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE frames (id INTEGER PRIMARY KEY, pipeline_id TEXT NOT NULL,"
            " source_id TEXT NOT NULL, frame_id INTEGER NOT NULL, timestamp_ns INTEGER NOT NULL,"
            " latency_ms REAL, fps REAL, detections INTEGER NOT NULL, fields TEXT NOT NULL)"
        )
        conn.execute("INSERT INTO frames VALUES (1, 'cam', '0', 1, 0, 250.0, 30.0, 2, '{}')")
    conn.close()
    (row,) = SeriesReader({"store": "sqlite", "path": str(path)}).series("cam", None, None)
    assert (row["latency_ms"], row["end_to_end_ms"], row["detections"]) == (None, 250.0, 2)
