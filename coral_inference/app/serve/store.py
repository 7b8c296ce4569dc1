"""The pipelines ``coral serve`` was asked to run, kept in SQLite so a restart restores them."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: When a stored pipeline is started again at the server's start.
RESTART_POLICIES = ("always", "on-failure", "never")


@dataclass
class PipelineRecord:
    """One pipeline created through the API.

    ``restart``: ``always`` (streams' default), ``on-failure`` (files' default: not again once
    its file ended) or ``never``. ``state``: ``running`` until the server saw it ``ended``
    (its sources finished) or ``failed``.
    """

    pipeline_id: str
    name: str
    model: str
    source: str
    max_fps: float | None
    created: float
    restart: str = "on-failure"
    state: str = "running"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def starts_again(self) -> bool:
        """Whether the server's start should run it again."""
        if self.restart == "never":
            return False
        return self.restart == "always" or self.state != "ended"


class PipelineStore:
    """Table ``pipelines`` of a SQLite file; safe to use from several threads."""

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS pipelines (
            pipeline_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            model TEXT NOT NULL,
            source TEXT NOT NULL,
            max_fps REAL,
            created REAL NOT NULL,
            restart TEXT,
            state TEXT
        )
    """
    #: Columns added since the first schema (a store written by an older version gains them).
    _ADDED = {"restart": "TEXT", "state": "TEXT"}
    _COLUMNS = "pipeline_id, name, model, source, max_fps, created, restart, state"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False)
        with self._conn:
            self._conn.execute(self._SCHEMA)
            present = {row[1] for row in self._conn.execute("PRAGMA table_info(pipelines)")}
            for column, kind in self._ADDED.items():
                if column not in present:
                    self._conn.execute(f"ALTER TABLE pipelines ADD COLUMN {column} {kind}")

    def add(self, record: PipelineRecord) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                f"INSERT OR REPLACE INTO pipelines ({self._COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.pipeline_id,
                    record.name,
                    record.model,
                    record.source,
                    record.max_fps,
                    record.created or time.time(),
                    record.restart,
                    record.state,
                ),
            )

    def set_state(self, pipeline_id: str, state: str) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE pipelines SET state = ? WHERE pipeline_id = ?", (state, pipeline_id)
            )

    def remove(self, pipeline_id: str) -> bool:
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "DELETE FROM pipelines WHERE pipeline_id = ?", (pipeline_id,)
            )
        return cursor.rowcount > 0

    def all(self) -> list[PipelineRecord]:
        """Every stored pipeline, oldest first (a row from before ``restart``/``state`` existed
        takes the defaults for its source)."""
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {self._COLUMNS} FROM pipelines ORDER BY created"
            ).fetchall()
        return [
            PipelineRecord(
                *row[:6],
                restart=row[6] or default_restart(row[3]),
                state=row[7] or "running",
            )
            for row in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def default_restart(source: str) -> str:
    """``on-failure`` for a video file (it ran to its end once), ``always`` for streams and
    cameras."""
    is_stream = "://" in source or source.isdigit() or source.startswith("/dev/")
    return "always" if is_stream else "on-failure"
