"""create_store: a BufferedMetricWriter from the checked ``services.metrics`` section; the
section's problems are configuration errors, found when the configuration loads."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from coral_inference.runtime.config import ConfigError, load_config
from coral_inference.services.metrics.factory import (
    BufferedMetricWriter,
    InfluxDBStore,
    MetricPoint,
    SqliteMetricStore,
    create_store,
)
from coral_inference.testing.influxdb import free_port


def metrics_section(**values: object) -> dict:
    config = load_config(env={}, data={"services": {"metrics": values}}, plugins=False)
    return config.section("services.metrics")


def test_sqlite_writer_from_config(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "metrics.db"
    writer = create_store(metrics_section(path=str(path), batch_size=2, flush_seconds=0.5))
    assert isinstance(writer, BufferedMetricWriter)
    assert isinstance(writer.store, SqliteMetricStore)
    for i in range(3):
        writer.submit(MetricPoint("p", "s", i, datetime.now(timezone.utc), 1.0, 2.0, 0))
    writer.close(timeout=5)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM frames").fetchone() == (3,)


def test_influxdb_writer_from_config() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    writer = create_store(metrics_section(store="influxdb", url=url, token="t"))
    store = writer.store
    assert isinstance(store, InfluxDBStore)
    assert (store.url, store.database) == (url, "coral")
    writer.close(timeout=1)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"store": "mysql"}, r"services.metrics.store: expected one of sqlite, influxdb"),
        (
            {"store": "influxdb"},
            r"services.metrics.url: store is influxdb: set the server's base URL",
        ),
        ({"store": "influxdb", "url": "h:8086"}, r"services.metrics.url: must start with http"),
        ({"store": "influxdb", "url": "http://h", "token": 5}, r"services.metrics.token"),
        ({"batch_size": 0}, r"services.metrics.batch_size: must be >= 1"),
        ({"batch_size": 1.5}, r"services.metrics.batch_size: expected an integer"),
        ({"buffer_max": True}, r"services.metrics.buffer_max"),
        ({"flush_seconds": "1"}, r"services.metrics.flush_seconds"),
        ({"x": 1}, r"services.metrics.x: unknown key 'x'"),
    ],
)
def test_invalid_metrics_config_is_a_config_error_naming_the_key(
    config: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        metrics_section(**config)


def test_influxdb_without_url_is_caught_by_config_validate_naming_the_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env={}, overrides=["services.metrics.store=influxdb"], plugins=False)
    (issue,) = caught.value.issues
    assert issue.path == "services.metrics.url"
    assert "--set services.metrics.store" in issue.source
