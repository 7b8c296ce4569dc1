"""``GET /coral/metrics/{id}?since=&until=`` on the SQLite store: the window is exact to the
nanosecond (the InfluxDB store's twin runs against a real influxd in test_influxdb.py)."""

from __future__ import annotations

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
        [MetricPoint("cam", 0, i, T0 + timedelta(milliseconds=i), 5.0, 30.0, i) for i in range(10)]
    )
    store.close()
    reader = SeriesReader({"store": "sqlite", "path": str(path)})

    window = reader.series("cam", T0 + timedelta(milliseconds=2), T0 + timedelta(milliseconds=5))
    assert [row["frame_id"] for row in window] == [2, 3, 4, 5]
    assert window[0]["time"] == "2024-05-06T07:08:09.002Z"
    assert reader.series("other", None, None) == []
    assert (
        SeriesReader({"store": "sqlite", "path": str(tmp_path / "none.db")}).series(
            "cam", None, None
        )
        == []
    )
