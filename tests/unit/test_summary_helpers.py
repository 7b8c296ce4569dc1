"""The shared summary helpers: latency percentiles and recorder totals."""

from __future__ import annotations

from pathlib import Path

import pytest

from coral_inference.services.percentiles import percentiles
from coral_inference.services.recording.totals import recorder_totals

pytest.importorskip("cv2")  # the recorder's module imports it (not in the tox env 'core')
from coral_inference.services.recording.recorder import RecorderStats  # noqa: E402


def test_percentiles_nearest_rank_rounded() -> None:
    assert percentiles([]) == {"p50": None, "p95": None}
    assert percentiles([3.14159]) == {"p50": 3.14, "p95": 3.14}
    assert percentiles(float(v) for v in range(100, 0, -1)) == {"p50": 51.0, "p95": 96.0}


def test_recorder_totals_add_every_counter() -> None:
    def stats(written: int, dropped: int, failed: int, pending: int, discarded: int = 0):
        return RecorderStats(
            written, dropped, failed, pending, discarded, (Path("a.mp4"),), None, None
        )

    zero = {"frames_written": 0, "dropped": 0, "failed": 0, "pending": 0, "discarded": 0}
    assert recorder_totals([]) == zero
    assert recorder_totals([stats(10, 1, 2, 3, 4), stats(5, 0, 0, 4)]) == {
        "frames_written": 15,
        "dropped": 1,
        "failed": 2,
        "pending": 7,
        "discarded": 4,
    }


def test_model_time_is_the_result_s_own_else_the_latest_recorded() -> None:
    from coral_inference.services.runtime_services import ModelTimes

    times = ModelTimes()
    assert times.of({"predictions": []}) is None  # nothing recorded yet, none in the result
    times.record(0.012)
    assert times.of({"predictions": []}) == 12.0  # a workflow's result: the model's record
    assert times.of({"time": 0.02}) == 20.0  # a model's result: its own
