"""A bounded ring of recent results that many readers can follow without stealing frames."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Entry:
    sequence: int
    predictions: dict[str, Any] | None
    frame: Any


class FrameRing:
    """Keeps the last ``size`` (predictions, frame) pairs, each with a rising sequence number.

    Readers keep their own cursor: ``read_since(cursor)`` returns what came after it, so two
    readers each get every entry still in the ring (a reader that falls more than ``size`` behind
    misses the oldest ones, and can tell from the sequence numbers).
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"ring size must be at least 1, got {size}")
        self._entries: deque[Entry] = deque(maxlen=size)
        self._sequence = 0
        self._changed = threading.Condition()

    def append(self, predictions: dict[str, Any] | None, frame: Any) -> None:
        with self._changed:
            self._sequence += 1
            self._entries.append(Entry(self._sequence, predictions, frame))
            self._changed.notify_all()

    def latest(self) -> Entry | None:
        with self._changed:
            return self._entries[-1] if self._entries else None

    def read_since(self, cursor: int = 0, timeout: float | None = None) -> list[Entry]:
        """Entries with a sequence above ``cursor``; waits up to ``timeout`` for one."""
        with self._changed:
            if timeout and self._sequence <= cursor:
                self._changed.wait_for(lambda: self._sequence > cursor, timeout)
            return [entry for entry in self._entries if entry.sequence > cursor]

    def __len__(self) -> int:
        return len(self._entries)
