"""Where metric points end up: the store protocol, a SQLite store and an InfluxDB store."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import sqlite3
import threading
import urllib.parse
from collections.abc import Sequence
from gzip import compress as gzip_compress
from pathlib import Path
from typing import Protocol

from coral_inference.services.metrics.points import DEFAULT_MEASUREMENT, MetricPoint, datetime_to_ns

logger = logging.getLogger(__name__)
_encode_json = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


class MetricStoreError(Exception):
    """Base of the errors a metric store raises from ``write``."""


class StoreUnavailable(MetricStoreError):
    """A transient failure (server down, timeout, database locked): retry the same points."""


class StoreRejected(MetricStoreError):
    """A permanent failure for these points (bad request, auth, schema): do not retry them.

    ``dropped`` is how many of the points were refused, or None when all of them were.
    """

    def __init__(self, message: str, dropped: int | None = None) -> None:
        super().__init__(message)
        self.dropped = dropped


class MetricStore(Protocol):
    """A destination for metric points, driven by a single writer thread."""

    def write(self, points: Sequence[MetricPoint]) -> None:
        """Store ``points``; raise StoreUnavailable (retry) or StoreRejected (give up)."""

    def close(self) -> None:
        """Release the store's resources; no write follows."""


def frames_columns(conn: sqlite3.Connection) -> set[str]:
    """The column names of table ``frames`` (empty while it does not exist)."""
    return {row[1] for row in conn.execute("PRAGMA table_info(frames)")}


def is_legacy_frames_table(conn: sqlite3.Connection) -> bool:
    """Whether table ``frames`` has the schema from before ``end_to_end_ms`` (issue 19).

    That schema's ``latency_ms`` column held capture-to-result times, which are now
    ``end_to_end_ms``; ``latency_ms`` is now the model's time.
    """
    columns = frames_columns(conn)
    return "latency_ms" in columns and "end_to_end_ms" not in columns


class SqliteMetricStore:
    """Points as rows of table ``frames`` in a SQLite database (WAL mode).

    Each ``write`` is one transaction of one ``executemany``. Extra fields are stored as a JSON
    object in column ``fields``; ``timestamp_ns`` is nanoseconds since the Unix epoch. A database
    of the old schema is migrated on open (see :meth:`_create_or_migrate`). Meant to be driven by
    the writer thread; a lock serialises calls should another thread use it.
    """

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS frames (
            id INTEGER PRIMARY KEY,
            pipeline_id TEXT NOT NULL,
            source_id TEXT NOT NULL,
            frame_id INTEGER NOT NULL,
            timestamp_ns INTEGER NOT NULL,
            end_to_end_ms REAL,
            latency_ms REAL,
            fps REAL,
            detections INTEGER NOT NULL,
            fields TEXT NOT NULL
        )
    """
    _INSERT = (
        "INSERT INTO frames (pipeline_id, source_id, frame_id, timestamp_ns, end_to_end_ms,"
        " latency_ms, fps, detections, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def __init__(self, path: str | os.PathLike[str], timeout: float = 5.0) -> None:
        """Open (creating it and its directories if needed) the database at ``path``.

        ``timeout`` is how long a write waits for a lock held by another connection.
        """
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=timeout, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._create_or_migrate()

    def _create_or_migrate(self) -> None:
        """Create table ``frames``, or bring one of the old schema up to date.

        The old ``latency_ms`` column (capture-to-result times) is renamed ``end_to_end_ms``,
        keeping its values and their meaning, and a new ``latency_ms`` column takes model times
        (NULL in the old rows). The check is repeated under ``BEGIN IMMEDIATE``, SQLite's write
        lock: pipeline processes opening one database at once take turns, and those after the
        first find it migrated. A current database is only read, never locked.
        """
        conn = self._conn
        if frames_columns(conn) >= {"end_to_end_ms", "latency_ms"}:
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(self._SCHEMA)
            if is_legacy_frames_table(conn):
                conn.execute("ALTER TABLE frames RENAME COLUMN latency_ms TO end_to_end_ms")
                conn.execute("ALTER TABLE frames ADD COLUMN latency_ms REAL")
                logger.info("%s: migrated table frames (latency_ms -> end_to_end_ms)", self.path)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def write(self, points: Sequence[MetricPoint]) -> None:
        """Insert one row per point in a single transaction."""
        rows = [
            (
                p.pipeline_id,
                str(p.source_id),
                int(p.frame_id),
                datetime_to_ns(p.timestamp),
                float(p.end_to_end_ms),
                None if p.latency_ms is None else float(p.latency_ms),
                float(p.fps),
                int(p.detections),
                _encode_json(p.fields) if p.fields else "{}",
            )
            for p in points
        ]
        with self._lock:
            try:
                with self._conn:
                    self._conn.executemany(self._INSERT, rows)
            except sqlite3.OperationalError as exc:  # locked, busy, disk full, I/O error
                raise StoreUnavailable(f"sqlite {self.path}: {exc}") from exc
            except sqlite3.Error as exc:
                raise StoreRejected(f"sqlite {self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()


class InfluxDBStore:
    """Points POSTed as line protocol to the v1-compatible ``/write`` endpoint.

    InfluxDB 1.x, 2.x and 3.x and VictoriaMetrics accept ``{url}/write?db=..&precision=ns``.
    One keep-alive connection is reused across writes.

    Only points the server calls malformed (HTTP 400, 422; InfluxDB 1.x "partial write"
    answers say how many) raise StoreRejected. Everything else that is not a success raises
    StoreUnavailable, so the points stay buffered and are retried: 5xx, timeouts and refused
    connections, 401/403 (credentials: fix the token and the server accepts them), and 404
    "database not found". On that 404 the store first creates the database with InfluxDB
    1.x's ``CREATE DATABASE`` (as Telegraf does) unless ``create_database`` is False.
    """

    _MALFORMED_STATUSES = frozenset({400, 422})
    _PARTIAL_DROPPED = re.compile(r"dropped=(\d+)")

    def __init__(
        self,
        url: str,
        database: str,
        token: str | None = None,
        measurement: str = DEFAULT_MEASUREMENT,
        timeout: float = 10.0,
        gzip: bool = False,
        create_database: bool = True,
    ) -> None:
        """``url`` is the server's base URL (``http[s]://host:port[/prefix]``).

        ``token`` is sent as ``Authorization: Token <token>``; ``gzip`` compresses bodies;
        ``create_database`` sends ``CREATE DATABASE`` when the server says it is missing.
        """
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"InfluxDB url must be http(s)://host[:port], got {url!r}")
        if parts.username or parts.password:
            raise ValueError("credentials in the InfluxDB url are not supported: pass a token")
        self.url = url
        self.database = database
        self.measurement = measurement
        self.timeout = timeout
        self.gzip = gzip
        self.create_database = create_database
        self._scheme = parts.scheme
        self._host = parts.hostname
        self._port = parts.port
        query = urllib.parse.urlencode({"db": database, "precision": "ns"})
        self._path = f"{parts.path.rstrip('/')}/write?{query}"
        statement = 'CREATE DATABASE "{}"'.format(database.replace('"', '\\"'))
        self._create_path = (
            f"{parts.path.rstrip('/')}/query?{urllib.parse.urlencode({'q': statement})}"
        )
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if token:
            self._headers["Authorization"] = f"Token {token}"
        if gzip:
            self._headers["Content-Encoding"] = "gzip"
        self._conn: http.client.HTTPConnection | None = None

    def write(self, points: Sequence[MetricPoint]) -> None:
        """POST the points as one request."""
        measurement = self.measurement
        body = "\n".join([p.to_line_protocol(measurement) for p in points]).encode()
        if self.gzip:
            body = gzip_compress(body, compresslevel=1)
        status, reply = self._post(self._path, body)
        if status == 404 and "database not found" in reply and self.create_database:
            self._create_database()
            status, reply = self._post(self._path, body)
        if 200 <= status < 300:
            return
        message = f"InfluxDB {self.url} answered HTTP {status} for db {self.database!r}: {reply}"
        if status in self._MALFORMED_STATUSES:
            partial = self._PARTIAL_DROPPED.search(reply) if "partial write" in reply else None
            raise StoreRejected(message, int(partial.group(1)) if partial else None)
        if status in (401, 403):
            message += " (check services.metrics.token; points are kept and retried)"
        elif status == 404 and "database not found" in reply:
            message += (
                " (create it, or let coral create it: services.metrics.create_database: true)"
                if not self.create_database
                else ""
            )
        raise StoreUnavailable(message)

    def _create_database(self) -> None:
        """``CREATE DATABASE`` (a no-op where it exists); StoreUnavailable saying why not."""
        status, reply = self._post(self._create_path, b"")
        if not 200 <= status < 300 or '"error"' in reply:
            raise StoreUnavailable(
                f"InfluxDB {self.url}: database {self.database!r} does not exist and "
                f"CREATE DATABASE failed (HTTP {status}: {reply}); create it or give a "
                "token allowed to (services.metrics.create_database: false to not try)"
            )
        logger.info("created InfluxDB database %r on %s", self.database, self.url)

    def _post(self, path: str, body: bytes) -> tuple[int, str]:
        """Send ``body``; returns (status, error text) or raises StoreUnavailable."""
        reused = self._conn is not None
        try:
            return self._send(path, body)
        except (OSError, http.client.HTTPException) as exc:
            if not reused or isinstance(exc, TimeoutError):
                raise StoreUnavailable(f"InfluxDB {self.url}: {exc!r}") from exc
        try:  # the server had closed the idle kept-alive connection: once more on a fresh one
            return self._send(path, body)
        except (OSError, http.client.HTTPException) as exc:
            raise StoreUnavailable(f"InfluxDB {self.url}: {exc!r}") from exc

    def _send(self, path: str, body: bytes) -> tuple[int, str]:
        conn, self._conn = self._conn or self._connect(), None
        try:
            conn.request("POST", path, body, self._headers)
            response = conn.getresponse()
            reply = response.read()
        except BaseException:
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._conn = conn
        return response.status, self._error_text(reply)

    def _connect(self) -> http.client.HTTPConnection:
        if self._scheme == "https":
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout)
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    @staticmethod
    def _error_text(reply: bytes) -> str:
        """The ``error``/``message`` of a JSON error body, else the body itself (truncated).

        A ``/query`` answer reports a failed statement inside ``results``; it is kept whole.
        """
        text = reply.decode(errors="replace").strip()
        try:
            decoded = json.loads(text)
        except ValueError:
            return text[:500]
        if isinstance(decoded, dict):
            return str(decoded.get("error") or decoded.get("message") or text)[:500]
        return text[:500]

    def close(self) -> None:
        """Close the kept-alive connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
