"""Buffered delivery of metric points from the inference thread to a store.

:meth:`BufferedMetricWriter.submit` only appends to a bounded in-memory buffer; a daemon thread
takes batches from its head, writes them and removes them once the store has them. While the
store is unavailable the batch stays in the buffer and is retried with exponential backoff;
when the buffer is full the oldest points make room for new ones and are counted as dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice

from coral_inference.services.background import run_in_background_priority
from coral_inference.services.metrics.points import MetricPoint
from coral_inference.services.metrics.stores import MetricStore, StoreRejected, StoreUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriterStats:
    """A snapshot of a writer's counters.

    Once the writer is idle, ``written + dropped + rejected + pending`` equals the number of
    points submitted.
    """

    written: int
    """Points the store accepted."""
    dropped: int
    """Points discarded unwritten: the oldest ones on buffer overflow, or submitted after close."""
    rejected: int
    """Points the store refused for good (bad request, auth, schema)."""
    pending: int
    """Points in the buffer, not yet written."""
    failures: int
    """Failed write attempts, transient or permanent."""
    last_error: str | None
    """The most recent write error, if any."""


class BufferedMetricWriter:
    """Batches points to a :class:`MetricStore` from a background daemon thread.

    A batch is written when ``batch_size`` points are waiting or ``flush_seconds`` after the
    previous batch. At most ``buffer_max`` points are held (including the batch being written).
    Retries after StoreUnavailable wait ``retry_initial`` seconds, doubling up to ``retry_max``.
    """

    def __init__(
        self,
        store: MetricStore,
        batch_size: int = 500,
        flush_seconds: float = 1.0,
        buffer_max: int = 100_000,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
    ) -> None:
        for name, value in (
            ("batch_size", batch_size),
            ("flush_seconds", flush_seconds),
            ("buffer_max", buffer_max),
            ("retry_initial", retry_initial),
            ("retry_max", retry_max),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        self._store = store
        self._batch_size = batch_size
        self._trigger = min(batch_size, buffer_max)
        self._flush_seconds = flush_seconds
        self._buffer_max = buffer_max
        self._retry_initial = retry_initial
        self._retry_max = retry_max

        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._buffer: deque[MetricPoint] = deque()
        self._head_seq = 0  # how many points ever left the buffer's head
        self._written = 0
        self._dropped = 0
        self._rejected = 0
        self._failures = 0
        self._last_error: str | None = None
        self._close_deadline: float | None = None
        self._kick = False  # set by close(): cut the current backoff short
        self._overflow_logged = False
        self._after_close_logged = False
        self._rejection_logged = False
        # Touched by the writer thread only:
        self._flush_at = time.monotonic() + flush_seconds
        self._retry_delay = retry_initial
        self._outage_since: float | None = None
        self._outage_failures = 0
        self._outage_dropped = 0
        self._outage_reason: str | None = None

        self._thread = threading.Thread(target=self._run, name="coral-metric-writer", daemon=True)
        self._thread.start()

    def submit(self, point: MetricPoint) -> None:
        """Queue ``point`` for writing. O(1); never waits on the store."""
        warning = None
        with self._lock:
            if self._close_deadline is not None:
                self._dropped += 1
                if not self._after_close_logged:
                    self._after_close_logged = True
                    warning = "point submitted after close() dropped"
            else:
                buffer = self._buffer
                if len(buffer) >= self._buffer_max:
                    buffer.popleft()
                    self._head_seq += 1
                    self._dropped += 1
                    if not self._overflow_logged:
                        self._overflow_logged = True
                        warning = f"buffer full ({self._buffer_max} points), dropping the oldest"
                buffer.append(point)
                if len(buffer) == self._trigger:
                    self._wakeup.notify()
        if warning is not None:
            logger.warning("metric writer: %s", warning)

    @property
    def store(self) -> MetricStore:
        """The store this writer delivers to."""
        return self._store

    @property
    def stats(self) -> WriterStats:
        """The current counters."""
        with self._lock:
            return WriterStats(
                written=self._written,
                dropped=self._dropped,
                rejected=self._rejected,
                pending=len(self._buffer),
                failures=self._failures,
                last_error=self._last_error,
            )

    def close(self, timeout: float = 10.0) -> None:
        """Write what is buffered (retrying for up to ``timeout`` seconds), then stop.

        Points still unwritten at the deadline stay counted in ``stats.pending``. The store is
        closed by the writer thread once its last write has returned.
        """
        with self._lock:
            if self._close_deadline is None:
                self._close_deadline = time.monotonic() + timeout
            self._kick = True
            self._wakeup.notify_all()
            deadline = self._close_deadline
        # Grace for a write already in flight at the deadline (bounded by the store's timeout).
        self._thread.join(max(deadline - time.monotonic(), 0.0) + 1.0)
        stats = self.stats
        if self._thread.is_alive():
            logger.warning(
                "metric writer still busy after close(%.1f); %d points pending",
                timeout,
                stats.pending,
            )
        elif stats.pending:
            logger.warning("metric writer closed with %d points unwritten", stats.pending)

    def __enter__(self) -> BufferedMetricWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        run_in_background_priority()
        try:
            while (batch := self._next_batch()) is not None:
                self._deliver(*batch)
        finally:
            try:
                self._store.close()
            except Exception:
                logger.exception("closing the metric store failed")

    def _next_batch(self) -> tuple[list[MetricPoint], int] | None:
        """Wait for a full batch, the flush timer or close(); None when it is time to stop."""
        with self._lock:
            while True:
                now = time.monotonic()
                if self._close_deadline is not None:
                    if not self._buffer or now >= self._close_deadline:
                        return None
                    break
                if len(self._buffer) >= self._trigger:
                    break
                if now >= self._flush_at:
                    if self._buffer:
                        break
                    self._flush_at = now + self._flush_seconds
                self._wakeup.wait(self._flush_at - now)
            self._flush_at = now + self._flush_seconds
            return list(islice(self._buffer, self._batch_size)), self._head_seq

    def _deliver(self, batch: list[MetricPoint], start_seq: int) -> None:
        """Write one batch and settle the buffer and counters accordingly."""
        try:
            self._store.write(batch)
        except StoreUnavailable as exc:
            self._on_unavailable(exc)
            return
        except StoreRejected as exc:
            refused = len(batch) if exc.dropped is None else min(exc.dropped, len(batch))
            self._on_rejected(exc, refused, unexpected=False)
        except Exception as exc:  # a store bug must not stall delivery: drop the batch
            refused = len(batch)
            self._on_rejected(exc, refused, unexpected=True)
        else:
            refused = 0
        self._settle(start_seq, len(batch), refused)
        self._retry_delay = self._retry_initial
        if self._outage_since is not None:
            logger.info(
                "metric store available again after %.1fs (%d failed attempts, "
                "%d points dropped meanwhile)",
                time.monotonic() - self._outage_since,
                self._outage_failures,
                self.stats.dropped - self._outage_dropped,
            )
            self._outage_since = None
            self._outage_reason = None
            with self._lock:
                self._overflow_logged = False

    def _settle(self, start_seq: int, count: int, refused: int) -> None:
        """Remove a batch the store has answered for from the buffer's head.

        Points of the batch that overflow pushed out while it was being written were counted
        as dropped; the store has them, so they move to written/rejected.
        """
        end_seq = start_seq + count
        with self._lock:
            self._dropped -= min(max(self._head_seq - start_seq, 0), count)
            for _ in range(end_seq - self._head_seq):
                self._buffer.popleft()
            self._head_seq = max(self._head_seq, end_seq)
            self._written += count - refused
            self._rejected += refused

    def _on_unavailable(self, exc: StoreUnavailable) -> None:
        """Count the failure, log it once per outage and back off."""
        now = time.monotonic()
        with self._lock:
            self._failures += 1
            self._last_error = str(exc)
            dropped = self._dropped
        reason = str(exc)
        if self._outage_since is None:
            self._outage_since = now
            self._outage_failures = 0
            self._outage_dropped = dropped
        if reason != self._outage_reason:  # a new outage, or the reason changed (down -> 401)
            self._outage_reason = reason
            logger.warning(
                "metric store unavailable (%s); buffering up to %d points, retrying",
                exc,
                self._buffer_max,
            )
        else:
            logger.debug("metric store still unavailable: %s", exc)
        self._outage_failures += 1
        delay, self._retry_delay = self._retry_delay, min(self._retry_delay * 2, self._retry_max)
        self._backoff_until(now + delay)

    def _on_rejected(self, exc: Exception, refused: int, unexpected: bool) -> None:
        """Count a permanent failure; the first one is logged as an error, later ones at DEBUG."""
        with self._lock:
            self._failures += 1
            self._last_error = str(exc)
            first = not self._rejection_logged
            self._rejection_logged = True
        if first:
            logger.error(
                "metric store refused %d points, which are dropped (%s); further refusals are "
                "counted in stats.rejected and logged at DEBUG",
                refused,
                exc,
                exc_info=unexpected,
            )
        else:
            logger.debug("metric store refused %d points: %s", refused, exc)

    def _backoff_until(self, retry_at: float) -> None:
        """Sleep until ``retry_at``, the close deadline, or a close() call, whichever is first."""
        with self._lock:
            while not self._kick:
                limit = retry_at
                if self._close_deadline is not None:
                    limit = min(limit, self._close_deadline)
                remaining = limit - time.monotonic()
                if remaining <= 0:
                    break
                self._wakeup.wait(remaining)
            self._kick = False
