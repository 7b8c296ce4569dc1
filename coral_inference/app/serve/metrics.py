"""``/coral/metrics/{id}`` (series for charts) and ``/metrics`` (Prometheus text exposition).

Series are read back from the configured store: the SQLite ``frames`` table, or InfluxDB with an
InfluxQL query on ``/query``. The exposition is built from the counters every pipeline process
publishes in its relay slot plus the runtime's plugin and patch records; it follows the text
format 0.0.4 (``# HELP``/``# TYPE`` once per family, escaped label values).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
import urllib.request
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from coral_inference.app.serve.settings import ServeError
from coral_inference.services.metrics.points import datetime_to_ns
from coral_inference.services.metrics.stores import is_legacy_frames_table

MAX_POINTS = 5000
#: The series' columns of table ``frames``, and the same of a database not yet migrated (whose
#: ``latency_ms`` holds capture-to-result times and which has no model times).
_SQLITE_COLUMNS = "timestamp_ns, frame_id, fps, latency_ms, end_to_end_ms, detections"
_LEGACY_SQLITE_COLUMNS = "timestamp_ns, frame_id, fps, NULL, latency_ms, detections"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 (``Z`` allowed) or seconds since the epoch; ServeError otherwise."""
    if value is None or value == "":
        return None
    try:
        return datetime.fromtimestamp(float(value), timezone.utc)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ServeError(f"{value!r} is not a time (ISO 8601 or epoch seconds)") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


class SeriesReader:
    """Reads one pipeline's points back from ``services.metrics``'s store."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        # Like the metric writer (http.client), never through an HTTP proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def series(
        self, pipeline_id: str, since: datetime | None, until: datetime | None
    ) -> list[dict[str, Any]]:
        if self.settings.get("store") == "influxdb":
            return self._influx(pipeline_id, since, until)
        return self._sqlite(pipeline_id, since, until)

    def _sqlite(
        self, pipeline_id: str, since: datetime | None, until: datetime | None
    ) -> list[dict[str, Any]]:
        path = Path(self.settings["path"])
        if not path.is_file():
            return []
        query = "SELECT {columns} FROM frames WHERE pipeline_id = ?"
        args: list[Any] = [pipeline_id]
        if since is not None:
            query += " AND timestamp_ns >= ?"
            args.append(datetime_to_ns(since))
        if until is not None:
            query += " AND timestamp_ns <= ?"
            args.append(datetime_to_ns(until))
        query += " ORDER BY timestamp_ns DESC LIMIT ?"
        args.append(MAX_POINTS)
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            legacy = is_legacy_frames_table(connection)
            columns = _LEGACY_SQLITE_COLUMNS if legacy else _SQLITE_COLUMNS
            rows = connection.execute(query.format(columns=columns), args).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []
            raise ServeError(f"metrics store {path}: {error}") from None
        finally:
            connection.close()
        return [
            {
                "time": _iso(datetime.fromtimestamp(ns / 1e9, timezone.utc)),
                "frame_id": frame_id,
                "fps": fps,
                "latency_ms": latency,
                "end_to_end_ms": end_to_end,
                "detections": detections,
            }
            for ns, frame_id, fps, latency, end_to_end, detections in reversed(rows)
        ]

    def _influx(
        self, pipeline_id: str, since: datetime | None, until: datetime | None
    ) -> list[dict[str, Any]]:
        from coral_inference.services.metrics.points import DEFAULT_MEASUREMENT

        escaped = pipeline_id.replace("\\", "\\\\").replace("'", "\\'")
        where = [f"\"pipeline_id\" = '{escaped}'"]
        if since is not None:
            where.append(f"time >= {datetime_to_ns(since)}")
        if until is not None:
            where.append(f"time <= {datetime_to_ns(until)}")
        statement = (
            'SELECT "frame_id", "fps", "latency_ms", "end_to_end_ms", "detections"'
            f' FROM "{DEFAULT_MEASUREMENT}"'
            f" WHERE {' AND '.join(where)} ORDER BY time DESC LIMIT {MAX_POINTS}"
        )
        query = urllib.parse.urlencode(
            {"db": self.settings["database"], "q": statement, "epoch": "ns"}
        )
        request = urllib.request.Request(f"{str(self.settings['url']).rstrip('/')}/query?{query}")
        if self.settings.get("token"):
            request.add_header("Authorization", f"Token {self.settings['token']}")
        try:
            with self._opener.open(request, timeout=10) as response:
                body = json.load(response)
        except OSError as error:
            raise ServeError(f"metrics store {self.settings['url']}: {error}") from None
        points = []
        for result in body.get("results", []):
            for serie in result.get("series", []) or []:
                columns = serie["columns"]
                for values in serie["values"]:
                    row = dict(zip(columns, values, strict=False))
                    row["time"] = _iso(datetime.fromtimestamp(row["time"] / 1e9, timezone.utc))
                    points.append(row)
        points.sort(key=lambda p: p["time"])
        return points


def _iso(stamp: datetime) -> str:
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Prometheus text format, one metric family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, Any], Any]]
    ) -> None:
        if kind == "counter":  # the text format names counters' samples and family alike
            name += "_total"
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if value is None:
                continue
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{text}}} {float(value)!r}")

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def exposition(pipelines: list[dict[str, Any]], runtime: dict[str, Any], viewers: int) -> str:
    """The ``/metrics`` document for the listed pipelines and the runtime's records."""
    out = Exposition()

    def per_pipeline(get: Any) -> list[tuple[dict[str, Any], Any]]:
        return [({"pipeline_id": p["pipeline_id"], "name": p["name"]}, get(p)) for p in pipelines]

    out.family(
        "coral_pipeline_up",
        "gauge",
        "1 while the pipeline runs",
        per_pipeline(lambda p: 1 if p["status"] == "running" else 0),
    )
    out.family(
        "coral_source_up",
        "gauge",
        "1 while the pipeline's source delivers (0 during an outage)",
        per_pipeline(lambda p: None if not p["source_health"] else int(p["source_health"]["up"])),
    )
    out.family(
        "coral_source_reconnects",
        "counter",
        "times the pipeline's source came back after an outage",
        per_pipeline(lambda p: p["source_health"].get("reconnects")),
    )
    out.family(
        "coral_pipeline_frames", "counter", "frames processed", per_pipeline(lambda p: p["frames"])
    )
    out.family(
        "coral_pipeline_fps",
        "gauge",
        "frames per second (last 100 frames)",
        per_pipeline(lambda p: p["fps"]),
    )
    out.family(
        "coral_pipeline_detections",
        "counter",
        "objects detected",
        per_pipeline(lambda p: p["detections"]),
    )

    def quantiles(field: str) -> list[tuple[dict[str, Any], Any]]:
        return [
            ({"pipeline_id": p["pipeline_id"], "name": p["name"], "quantile": q}, p[field][key])
            for p in pipelines
            for q, key in (("0.5", "p50"), ("0.95", "p95"))
        ]

    out.family(
        "coral_pipeline_latency_milliseconds",
        "summary",
        "the model's time per frame (pre-processing, forward pass, decoding), last 100 frames",
        quantiles("latency_ms"),
    )
    out.family(
        "coral_pipeline_end_to_end_milliseconds",
        "summary",
        "frame capture to result, last 100 frames",
        quantiles("end_to_end_ms"),
    )
    for key, name, help_text in (
        ("frames_written", "coral_recorder_frames_written", "frames written to recordings"),
        ("dropped", "coral_recorder_frames_dropped", "frames the recorder dropped (behind)"),
        ("failed", "coral_recorder_frames_failed", "frames lost to disk errors"),
        (
            "discarded",
            "coral_recorder_frames_discarded",
            "frames of segments deleted for holding no detection (retain: detections)",
        ),
    ):
        out.family(name, "counter", help_text, per_pipeline(lambda p, k=key: p["recording"].get(k)))
    out.family(
        "coral_recorder_frames_pending",
        "gauge",
        "frames queued for recording, not yet written",
        per_pipeline(lambda p: p["recording"].get("pending")),
    )
    for key, name, help_text in (
        ("written", "coral_metric_points_written", "metric points the store accepted"),
        ("dropped", "coral_metric_points_dropped", "metric points dropped (buffer full)"),
        ("rejected", "coral_metric_points_rejected", "metric points the store refused"),
        ("failures", "coral_metric_write_failures", "failed metric write attempts"),
    ):
        out.family(name, "counter", help_text, per_pipeline(lambda p, k=key: p["metrics"].get(k)))
    for key, name, help_text in (
        ("frames", "coral_frame_sink_frames", "frames a plugin's frame sink handled"),
        ("dropped", "coral_frame_sink_dropped", "frames a plugin's frame sink dropped (behind)"),
        ("failed", "coral_frame_sink_failures", "times a plugin's frame sink raised"),
    ):
        out.family(
            name,
            "counter",
            help_text,
            [
                ({"pipeline_id": p["pipeline_id"], "name": p["name"], "plugin": plugin}, c.get(key))
                for p in pipelines
                for plugin, c in sorted((p.get("frame_sinks") or {}).items())
            ],
        )
    out.family("coral_preview_viewers", "gauge", "open preview connections", [({}, viewers)])
    out.family(
        "coral_plugin_status",
        "gauge",
        "1 per discovered plugin, labelled with its status",
        [
            ({"plugin": r["name"], "group": r.get("group", ""), "status": r["status"]}, 1)
            for r in runtime.get("plugins", [])
        ],
    )
    out.family(
        "coral_patch_status",
        "gauge",
        "1 per patch, labelled with its status",
        [({"patch": name, "status": r["status"]}, 1) for name, r in runtime["patches"].items()],
    )
    return out.render()
