"""Per-frame metrics sink: public API and the factory that builds it from configuration.

A ``metrics`` configuration section looks like::

    metrics:
      store: influxdb          # or sqlite
      url: http://127.0.0.1:8086
      database: coral
      token: ...               # optional
      batch_size: 500          # optional, as are flush_seconds and buffer_max
    # or
    metrics:
      store: sqlite
      path: /var/lib/coral/metrics.db

Keys this module does not know are left to other consumers of the section.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coral_inference.services.metrics.points import DEFAULT_MEASUREMENT, FieldValue, MetricPoint
from coral_inference.services.metrics.stores import (
    InfluxDBStore,
    MetricStore,
    MetricStoreError,
    SqliteMetricStore,
    StoreRejected,
    StoreUnavailable,
)
from coral_inference.services.metrics.writer import BufferedMetricWriter, WriterStats

__all__ = [
    "DEFAULT_MEASUREMENT",
    "BufferedMetricWriter",
    "FieldValue",
    "InfluxDBStore",
    "MetricPoint",
    "MetricStore",
    "MetricStoreError",
    "SqliteMetricStore",
    "StoreRejected",
    "StoreUnavailable",
    "WriterStats",
    "create_store",
]


def create_store(metrics_config: Mapping[str, Any]) -> BufferedMetricWriter:
    """A started BufferedMetricWriter over the store the ``services.metrics`` section describes.

    The section is checked (types, ranges, InfluxDB's ``url``) when the configuration loads.
    """
    store: MetricStore
    if metrics_config["store"] == "sqlite":
        store = SqliteMetricStore(metrics_config["path"])
    else:
        store = InfluxDBStore(
            metrics_config["url"],
            metrics_config["database"],
            token=metrics_config.get("token"),
            create_database=metrics_config.get("create_database", True),
        )
    return BufferedMetricWriter(
        store,
        batch_size=metrics_config["batch_size"],
        flush_seconds=metrics_config["flush_seconds"],
        buffer_max=metrics_config["buffer_max"],
    )
