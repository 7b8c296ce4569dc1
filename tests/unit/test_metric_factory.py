"""create_store: building a BufferedMetricWriter from the ``metrics`` config section."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from coral_inference.services.metrics.factory import (
    BufferedMetricWriter,
    InfluxDBStore,
    MetricPoint,
    MetricsConfigError,
    SqliteMetricStore,
    create_store,
)
from coral_inference.testing.influxdb import free_port


def test_sqlite_writer_from_config(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "metrics.db"
    writer = create_store(
        {"store": "sqlite", "path": str(path), "batch_size": 2, "flush_seconds": 0.5, "x": 1}
    )
    assert isinstance(writer, BufferedMetricWriter)
    assert isinstance(writer.store, SqliteMetricStore)
    for i in range(3):
        writer.submit(MetricPoint("p", "s", i, datetime.now(timezone.utc), 1.0, 2.0, 0))
    writer.close(timeout=5)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM frames").fetchone() == (3,)


def test_influxdb_writer_from_config() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    writer = create_store({"store": "influxdb", "url": url, "database": "coral", "token": "t"})
    store = writer.store
    assert isinstance(store, InfluxDBStore)
    assert (store.url, store.database) == (url, "coral")
    writer.close(timeout=1)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "metrics.store must be one of sqlite, influxdb, got None"),
        ({"store": "mysql"}, "metrics.store must be one of"),
        ({"store": "sqlite"}, "metrics.path is required"),
        ({"store": "influxdb", "database": "d"}, "metrics.url is required .* 'influxdb'"),
        ({"store": "influxdb", "url": "http://h:8086"}, "metrics.database is required"),
        ({"store": "influxdb", "url": "h:8086", "database": "d"}, "metrics.url must start"),
        ({"store": "influxdb", "url": "http://h", "database": "d", "token": 5}, "metrics.token"),
        ({"store": "sqlite", "path": "m.db", "batch_size": 0}, "metrics.batch_size"),
        ({"store": "sqlite", "path": "m.db", "batch_size": 1.5}, "metrics.batch_size"),
        ({"store": "sqlite", "path": "m.db", "buffer_max": True}, "metrics.buffer_max"),
        ({"store": "sqlite", "path": "m.db", "flush_seconds": "1"}, "metrics.flush_seconds"),
    ],
)
def test_invalid_config_names_the_key(config: dict, message: str) -> None:
    with pytest.raises(MetricsConfigError, match=message):
        create_store(config)
