"""SourceHealth on inference's status events, with a clock the test moves."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from coral_inference.services.source_health import SourceHealth

pytestmark = pytest.mark.core


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(event_type: str, **payload: object) -> SimpleNamespace:
    return SimpleNamespace(event_type=event_type, payload={"source_id": 0, **payload})


def restarting() -> SimpleNamespace:
    return event("SOURCE_STATE_UPDATE", new_state=SimpleNamespace(value="RESTARTING"))


def capture(health: SourceHealth, clock: Clock, frames: int, fps: float) -> None:
    for _ in range(frames):
        health.on_status(event("FRAME_CAPTURED", frame_id=1))
        clock.now += 1 / fps


def test_an_outage_counts_once_however_many_attempts_fail() -> None:
    clock = Clock()
    health = SourceHealth(None, lambda _: None, clock)
    assert health.summary()["up"] is False  # nothing delivered yet
    health.on_status(event("VIDEO_CONSUMPTION_STARTED"))  # the first connection is no reconnect
    capture(health, clock, 51, fps=10)
    for _ in range(4):  # inference retries about once a second
        health.on_status(restarting())
        clock.now += 1.5
    assert health.summary()["up"] is False
    health.on_status(event("VIDEO_CONSUMPTION_STARTED"))
    summary = health.summary()
    assert summary == {
        "reconnects": 1,
        "outage_seconds": 6.0,
        "frames_missed_estimate": 60,
        "up": True,
    }


def test_a_source_away_too_long_is_given_up_once() -> None:
    gave_up = threading.Event()
    reasons: list[str] = []

    def on_give_up(reason: str) -> None:
        reasons.append(reason)
        gave_up.set()

    health = SourceHealth(0.05, on_give_up)
    health.on_status(restarting())
    assert gave_up.wait(30)
    health.on_status(restarting())
    health.close()
    assert len(reasons) == 1 and "did not come back" in reasons[0]
    assert health.given_up == reasons[0]


def test_a_source_back_in_time_is_not_given_up() -> None:
    reasons: list[str] = []
    health = SourceHealth(30, reasons.append)
    health.on_status(restarting())
    health.on_status(event("VIDEO_CONSUMPTION_STARTED"))
    health.close()
    assert reasons == [] and health.given_up is None
