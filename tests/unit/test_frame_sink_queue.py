"""The frame-sink queue on its own (no inference): a sink's thread, drops, failures and a
close that does not wait for ever. Frames are plain objects with the attributes the hub reads."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from coral_inference.services.frame_sinks import FrameSinkHub, FrameSinkRegistration

pytestmark = pytest.mark.core


def frame(frame_id: int) -> SimpleNamespace:
    return SimpleNamespace(frame_id=frame_id, source_id=0, frame_timestamp=None, image=None)


class Held:
    """A sink whose frames wait for ``release``; records what it got and whether it closed."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.frame_ids: list[int] = []
        self.closed = threading.Event()

    def on_frame(self, result) -> None:
        self.started.set()
        assert self.release.wait(60)
        self.frame_ids.append(result.frame_id)

    def close(self) -> None:
        self.closed.set()


def hub_with(factory, failures: list[str], **options) -> FrameSinkHub:
    hub = FrameSinkHub()
    hub.registrations = [
        FrameSinkRegistration.checked("probe", failures.append, factory, **options)
    ]
    return hub


def test_a_full_queue_drops_new_frames_and_counts_add_up():
    sink, failures = Held(), []
    sinks = hub_with(lambda pipeline: sink, failures, queue_size=3).open("p", config={})
    sinks.on_frame({"predictions": []}, frame(1))
    assert sink.started.wait(60)  # frame 1 in hand, the queue empty
    for frame_id in range(2, 11):
        sinks.on_frame({"predictions": []}, frame(frame_id))
    [queued] = sinks.sinks
    assert queued.counts() == {"frames": 0, "dropped": 6, "failed": 0, "pending": 4}
    sink.release.set()
    sinks.close()
    assert sink.frame_ids == [1, 2, 3, 4] and sink.closed.is_set()
    assert queued.counts() == {"frames": 4, "dropped": 6, "failed": 0, "pending": 0}
    assert failures == []


def test_close_gives_up_after_its_timeout_and_the_sink_still_closes():
    sink, failures = Held(), []
    hub = hub_with(lambda pipeline: sink, failures, queue_size=8, close_timeout_s=0)
    sinks = hub.open("p", config={})
    for frame_id in range(1, 4):
        sinks.on_frame(None, frame(frame_id))
    assert sink.started.wait(60)
    sinks.close()  # returns at once: frame 1 in hand, 2 and 3 dropped
    assert hub.stats() == {"probe": {"frames": 0, "dropped": 2, "failed": 0, "pending": 1}}
    sink.release.set()
    assert sink.closed.wait(60)
    assert sink.frame_ids == [1]


class Raising:
    def __init__(self) -> None:
        self.closed = threading.Event()

    def on_frame(self, result) -> None:
        raise ValueError(f"no frame {result.frame_id}")

    def close(self) -> None:
        self.closed.set()


def test_a_raising_sink_is_counted_and_reported_once(caplog):
    sink, failures = Raising(), []
    hub = hub_with(lambda pipeline: sink, failures)
    sinks = hub.open("p", config={})
    for frame_id in range(1, 6):
        sinks.on_frame(None, frame(frame_id))
    sinks.close()
    assert sink.closed.is_set()
    assert hub.stats()["probe"] == {"frames": 0, "dropped": 0, "failed": 5, "pending": 0}
    [reason] = failures
    assert reason.startswith("its frame sink raised ValueError: no frame 1 (in on_frame")
    assert sum("no frame" in r.getMessage() or r.exc_info is not None for r in caplog.records) == 1


def test_factories_that_raise_or_return_junk_fail_their_plugin_only():
    failures: list[str] = []
    hub = FrameSinkHub()
    hub.registrations = [
        FrameSinkRegistration.checked("boom", failures.append, lambda p: 1 / 0),
        FrameSinkRegistration.checked("junk", failures.append, lambda p: "not a sink"),
        FrameSinkRegistration.checked("skip", failures.append, lambda p: None),
    ]
    sinks = hub.open("p", config={})
    assert sinks.sinks == []
    sinks.on_frame(None, frame(1))
    sinks.close()
    assert len(failures) == 2
    assert "factory raised ZeroDivisionError" in failures[0]
    assert "lacks on_frame(result) / close()" in failures[1]
