"""A tapped sink that raises never reaches the pipeline and is logged once per pipeline (its
state lives with the sink: no module-level set of names grows with every pipeline)."""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest

from coral_inference.patches import tap
from coral_inference.patches.tap import tap_pipelines
from coral_inference.runtime.patching import Patcher

pytestmark = pytest.mark.core


class Pipeline:
    """The two methods ``tap_pipelines`` wraps, as inference's pipeline has them."""

    def __init__(self) -> None:
        self._on_prediction = lambda predictions, frames: None

    def join(self) -> None:
        pass


class Failing:
    def on_frame(self, predictions: Any, frame: Any) -> None:
        raise RuntimeError("disk on fire")

    def close(self) -> None:
        raise RuntimeError("cannot close")


def test_failing_sink_is_logged_once_per_pipeline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    patcher = Patcher("test")
    close_all = tap_pipelines(patcher, Pipeline, "failing", lambda _id, _p: Failing())
    try:
        with tap.pipeline_name("a"):
            pipeline = Pipeline()
        for frame_id in range(3):
            frame = SimpleNamespace(
                frame_id=frame_id,
                source_id=0,
                frame_timestamp=datetime.now(),
                comes_from_video_file=False,
            )
            pipeline._on_prediction({"predictions": []}, frame)  # does not raise
        pipeline.join()
        messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert messages == [
            "failing (a) sink failed (further failures are not logged)",
            "failing (a) sink failed to close",
            "failing (a) sink failed on 3 frames",
        ]
    finally:
        close_all()
        patcher.undo()


class Recorder:
    """A sink whose close waits for the test (a recorder finishing its last segment)."""

    def __init__(self, release: threading.Event, order: list[str]) -> None:
        self.release, self.order, self.closing = release, order, threading.Event()

    def on_frame(self, predictions: Any, frame: Any) -> None:
        pass

    def close(self) -> None:
        self.closing.set()
        assert self.release.wait(60)
        self.order.append("recorder closed")


class Publisher:
    """A sink tapped outside the recorder that publishes the recorder's final counters."""

    def __init__(self, order: list[str]) -> None:
        self.order = order

    def on_frame(self, predictions: Any, frame: Any) -> None:
        pass

    def close(self) -> None:
        self.order.append("published")


def test_an_outer_sink_closes_after_an_inner_one_another_thread_is_closing() -> None:
    """The runtime's shutdown closes the recorder in one thread while the pipeline's join runs
    in another: the join must wait for that close, not skip the recorder and publish early."""
    release, order = threading.Event(), []
    recorder = Recorder(release, order)
    patcher = Patcher("test")
    close_recorders = tap_pipelines(patcher, Pipeline, "recorder", lambda _id, _p: recorder)
    close_publishers = tap_pipelines(patcher, Pipeline, "publisher", lambda *_: Publisher(order))
    try:
        pipeline = Pipeline()
        shutdown = threading.Thread(target=close_recorders)
        shutdown.start()
        assert recorder.closing.wait(60)
        joined = threading.Thread(target=pipeline.join)
        joined.start()
        release.set()
        joined.join(60)
        shutdown.join(60)
        assert order == ["recorder closed", "published"]
    finally:
        release.set()
        close_publishers()
        patcher.undo()


@pytest.mark.parametrize("closer", ["join", "publisher's close_all", "recorder's close_all"])
def test_a_closes_last_sink_publishes_after_the_others_whoever_closes_first(closer: str) -> None:
    """The relay publishes the recorder's final counters: tapped before the recorder (inside
    it) and closed first by the runtime's shutdown, it must still close after the recorder."""
    release, order = threading.Event(), []
    recorder = Recorder(release, order)
    patcher = Patcher("test")
    close_publishers = tap_pipelines(
        patcher, Pipeline, "publisher", lambda *_: Publisher(order), closes_last=True
    )
    close_recorders = tap_pipelines(patcher, Pipeline, "recorder", lambda _id, _p: recorder)
    try:
        pipeline = Pipeline()
        first = {
            "join": pipeline.join,
            "publisher's close_all": close_publishers,
            "recorder's close_all": close_recorders,
        }[closer]
        closing = threading.Thread(target=first)
        closing.start()
        assert recorder.closing.wait(60)
        assert order == []  # the publisher waits for the recorder
        release.set()
        closing.join(60)
        close_publishers()
        close_recorders()
        assert order == ["recorder closed", "published"]
    finally:
        release.set()
        close_publishers()
        close_recorders()
        patcher.undo()
