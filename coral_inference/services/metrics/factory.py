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
    "MetricsConfigError",
    "SqliteMetricStore",
    "StoreRejected",
    "StoreUnavailable",
    "WriterStats",
    "create_store",
]

SECTION = "metrics"
STORES = ("sqlite", "influxdb")


class MetricsConfigError(ValueError):
    """The ``metrics`` configuration section is incomplete or invalid."""


def create_store(metrics_config: Mapping[str, Any]) -> BufferedMetricWriter:
    """A started BufferedMetricWriter over the store the ``metrics`` section describes.

    Raises MetricsConfigError naming the offending key (e.g. ``metrics.url``).
    """
    kind = metrics_config.get("store")
    if kind not in STORES:
        raise MetricsConfigError(
            f"{SECTION}.store must be one of {', '.join(STORES)}, got {kind!r}"
        )
    batch_size = _positive_int(metrics_config, "batch_size", 500)
    flush_seconds = _positive_float(metrics_config, "flush_seconds", 1.0)
    buffer_max = _positive_int(metrics_config, "buffer_max", 100_000)
    store: MetricStore
    if kind == "sqlite":
        store = SqliteMetricStore(_required_str(metrics_config, "path", kind))
    else:
        url = _required_str(metrics_config, "url", kind)
        if not url.startswith(("http://", "https://")):
            raise MetricsConfigError(f"{SECTION}.url must start with http:// or https://: {url!r}")
        database = _required_str(metrics_config, "database", kind)
        token = metrics_config.get("token")
        if token is not None and not isinstance(token, str):
            raise MetricsConfigError(f"{SECTION}.token must be a string")
        store = InfluxDBStore(url, database, token=token)
    return BufferedMetricWriter(
        store, batch_size=batch_size, flush_seconds=flush_seconds, buffer_max=buffer_max
    )


def _required_str(config: Mapping[str, Any], key: str, kind: str) -> str:
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise MetricsConfigError(
            f"{SECTION}.{key} is required (a non-empty string) when {SECTION}.store is {kind!r}"
        )
    return value


def _positive_int(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MetricsConfigError(f"{SECTION}.{key} must be a positive integer: {value!r}")
    return value


def _positive_float(config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise MetricsConfigError(f"{SECTION}.{key} must be a positive number: {value!r}")
    return float(value)
