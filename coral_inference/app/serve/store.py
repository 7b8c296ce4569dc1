"""The pipelines ``coral serve`` was asked to run, kept in SQLite so a restart restores them."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass
class PipelineRecord:
    """One pipeline created through the API."""

    pipeline_id: str
    name: str
    model: str
    source: str
    max_fps: float | None
    created: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PipelineStore:
    """Table ``pipelines`` of a SQLite file; safe to use from several threads."""

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS pipelines (
            pipeline_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            model TEXT NOT NULL,
            source TEXT NOT NULL,
            max_fps REAL,
            created REAL NOT NULL
        )
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False)
        with self._conn:
            self._conn.execute(self._SCHEMA)

    def add(self, record: PipelineRecord) -> None:
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO pipelines VALUES (?, ?, ?, ?, ?, ?)",
                (
                    record.pipeline_id,
                    record.name,
                    record.model,
                    record.source,
                    record.max_fps,
                    record.created or time.time(),
                ),
            )

    def remove(self, pipeline_id: str) -> bool:
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "DELETE FROM pipelines WHERE pipeline_id = ?", (pipeline_id,)
            )
        return cursor.rowcount > 0

    def all(self) -> list[PipelineRecord]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT pipeline_id, name, model, source, max_fps, created FROM pipelines"
                " ORDER BY created"
            ).fetchall()
        return [PipelineRecord(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
