"""A tapped sink that raises never reaches the pipeline and is logged once per pipeline (its
state lives with the sink: no module-level set of names grows with every pipeline)."""

from __future__ import annotations

import logging
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
