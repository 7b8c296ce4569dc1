"""BufferedMetricWriter: batching, retries, bounded buffer, exact counters, logging, close."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone

import pytest

from coral_inference.services.metrics.points import MetricPoint
from coral_inference.services.metrics.stores import StoreRejected, StoreUnavailable
from coral_inference.services.metrics.writer import BufferedMetricWriter

pytestmark = pytest.mark.core

T0 = datetime(2024, 5, 6, tzinfo=timezone.utc)
WRITER_LOG = "coral_inference.services.metrics.writer"


def make_point(frame_id: int) -> MetricPoint:
    return MetricPoint("pipe", 0, frame_id, T0, 1.0, 30.0, 0)


class FakeStore:
    """Keeps what it is given; ``available`` and ``gate`` script failures and slowness."""

    def __init__(self, available: bool = True) -> None:
        self.available = available
        self.reject: Callable[[Sequence[MetricPoint]], Exception | None] = lambda batch: None
        self.gate = threading.Event()
        self.gate.set()
        self.written: list[int] = []
        self.batches: list[int] = []
        self.attempts = 0
        self.closed = threading.Event()

    def write(self, points: Sequence[MetricPoint]) -> None:
        self.attempts += 1
        assert self.gate.wait(10), "test gate never opened"
        if not self.available:
            raise StoreUnavailable("connection refused")
        error = self.reject(points)
        if error is not None:
            raise error
        self.batches.append(len(points))
        self.written.extend(p.frame_id for p in points)

    def close(self) -> None:
        self.closed.set()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_everything_submitted_is_written_in_order_in_batches() -> None:
    store = FakeStore()
    writer = BufferedMetricWriter(store, batch_size=100, flush_seconds=0.05)
    for i in range(1050):
        writer.submit(make_point(i))
    writer.close(timeout=5)
    assert store.written == list(range(1050))
    assert max(store.batches) == 100
    stats = writer.stats
    assert (stats.written, stats.dropped, stats.rejected, stats.pending) == (1050, 0, 0, 0)
    assert store.closed.is_set()


def test_partial_batch_is_flushed_by_timer() -> None:
    store = FakeStore()
    writer = BufferedMetricWriter(store, batch_size=1000, flush_seconds=0.05)
    for i in range(3):
        writer.submit(make_point(i))
    wait_for(lambda: store.written == [0, 1, 2])
    writer.close(timeout=5)


def test_nothing_is_lost_across_an_outage() -> None:
    store = FakeStore(available=False)
    writer = BufferedMetricWriter(
        store, batch_size=50, flush_seconds=0.01, retry_initial=0.01, retry_max=0.05
    )
    for i in range(500):
        writer.submit(make_point(i))
    wait_for(lambda: store.attempts >= 3)
    for i in range(500, 700):
        writer.submit(make_point(i))
    store.available = True
    writer.close(timeout=5)
    assert store.written == list(range(700))
    stats = writer.stats
    assert (stats.written, stats.dropped, stats.pending) == (700, 0, 0)
    assert stats.failures >= 3
    assert stats.last_error == "connection refused"


def test_overflow_drops_exactly_the_oldest() -> None:
    store = FakeStore(available=False)
    writer = BufferedMetricWriter(
        store, batch_size=30, buffer_max=100, retry_initial=0.01, retry_max=0.02
    )
    for i in range(250):
        writer.submit(make_point(i))
    stats = writer.stats
    assert (stats.dropped, stats.pending, stats.written) == (150, 100, 0)
    store.available = True
    writer.close(timeout=5)
    assert store.written == list(range(150, 250))
    assert (writer.stats.written, writer.stats.dropped, writer.stats.pending) == (100, 150, 0)


def test_points_pushed_out_during_a_successful_write_count_as_written() -> None:
    store = FakeStore()
    store.gate.clear()  # hold the first write in flight
    writer = BufferedMetricWriter(store, batch_size=10, buffer_max=10, flush_seconds=60)
    for i in range(10):
        writer.submit(make_point(i))
    wait_for(lambda: store.attempts == 1)  # batch 0..9 is being written
    for i in range(10, 15):
        writer.submit(make_point(i))  # pushes 0..4 out of the buffer
    assert writer.stats.dropped == 5
    store.gate.set()
    wait_for(lambda: writer.stats.written == 10)
    stats = writer.stats
    assert (stats.written, stats.dropped, stats.pending) == (10, 0, 5)
    writer.close(timeout=5)
    assert store.written == list(range(15))


def test_close_with_store_down_keeps_points_pending_and_returns_in_time() -> None:
    store = FakeStore(available=False)
    writer = BufferedMetricWriter(store, buffer_max=100, retry_initial=0.05, retry_max=0.1)
    for i in range(250):
        writer.submit(make_point(i))
    started = time.monotonic()
    writer.close(timeout=0.5)
    assert time.monotonic() - started < 2.0
    stats = writer.stats
    assert (stats.written, stats.dropped, stats.pending) == (0, 150, 100)
    assert store.closed.wait(2)


def test_rejected_batches_are_dropped_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    store.reject = lambda batch: (
        StoreRejected("HTTP 400: bad line") if batch[0].frame_id < 20 else None
    )
    writer = BufferedMetricWriter(store, batch_size=10, flush_seconds=0.01)
    with caplog.at_level(logging.DEBUG, logger=WRITER_LOG):
        for i in range(30):
            writer.submit(make_point(i))
        writer.close(timeout=5)
    assert store.written == list(range(20, 30))
    assert store.attempts == 3  # no retry of refused batches
    stats = writer.stats
    assert (stats.written, stats.rejected, stats.failures) == (10, 20, 2)
    assert stats.last_error == "HTTP 400: bad line"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "bad line" in errors[0].getMessage()


def test_partial_rejection_counts_only_refused_points() -> None:
    store = FakeStore()
    refused = {"done": False}

    def reject_once(batch: Sequence[MetricPoint]) -> Exception | None:
        if refused["done"]:
            return None
        refused["done"] = True
        store.written.extend(p.frame_id for p in batch[:7])  # the server kept 7 of 10
        return StoreRejected("partial write", dropped=3)

    store.reject = reject_once
    writer = BufferedMetricWriter(store, batch_size=10, flush_seconds=0.01)
    for i in range(10):
        writer.submit(make_point(i))
    writer.close(timeout=5)
    assert (writer.stats.written, writer.stats.rejected) == (7, 3)


def test_unexpected_store_error_drops_batch_and_keeps_running() -> None:
    store = FakeStore()
    store.reject = lambda batch: ValueError("bug") if batch[0].frame_id == 0 else None
    writer = BufferedMetricWriter(store, batch_size=5, flush_seconds=0.01)
    for i in range(10):
        writer.submit(make_point(i))
    writer.close(timeout=5)
    assert store.written == list(range(5, 10))
    assert (writer.stats.written, writer.stats.rejected) == (5, 5)


def test_outage_logged_once_and_recovery_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore(available=False)
    with caplog.at_level(logging.INFO, logger=WRITER_LOG):
        writer = BufferedMetricWriter(
            store, batch_size=5, flush_seconds=0.01, retry_initial=0.01, retry_max=0.02
        )
        for i in range(20):
            writer.submit(make_point(i))
        wait_for(lambda: store.attempts >= 10)
        store.available = True
        wait_for(lambda: writer.stats.written == 20)
        writer.close(timeout=5)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    warnings = [m for level, m in messages if level == logging.WARNING]
    infos = [m for level, m in messages if level == logging.INFO]
    assert len(warnings) == 1 and "unavailable" in warnings[0]
    assert len(infos) == 1 and "available again" in infos[0]


def test_backoff_grows_up_to_retry_max() -> None:
    store = FakeStore(available=False)
    writer = BufferedMetricWriter(store, batch_size=1, retry_initial=0.05, retry_max=0.2)
    writer.submit(make_point(0))
    time.sleep(1.0)
    # 0.05 + 0.1 + 0.2 + 0.2 + 0.2 ... => about 6 attempts in a second, not hundreds
    assert 3 <= store.attempts <= 8
    writer.close(timeout=0.1)


def test_submit_after_close_is_dropped() -> None:
    writer = BufferedMetricWriter(FakeStore())
    writer.close(timeout=1)
    writer.submit(make_point(0))
    assert (writer.stats.dropped, writer.stats.pending) == (1, 0)


def test_context_manager_closes() -> None:
    store = FakeStore()
    with BufferedMetricWriter(store, flush_seconds=60) as writer:
        writer.submit(make_point(0))
    assert store.written == [0] and store.closed.is_set()


@pytest.mark.parametrize(
    "kwargs", [{"batch_size": 0}, {"buffer_max": -1}, {"flush_seconds": 0}, {"retry_max": 0}]
)
def test_invalid_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        BufferedMetricWriter(FakeStore(), **kwargs)
