"""Fixtures: a real mosquitto on a free 127.0.0.1 port (skipped, saying why, without the
binary), subscribers recording what arrives, and ``coral`` runs publishing to it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mqtt_helpers import Mosquitto, Recorder, find_mosquitto

# the module, not the name: the source folder coral_inference_mqtt/ imports as a namespace
pytest.importorskip("coral_inference_mqtt.events", reason="pip install ./coral_inference_mqtt")


def clean_env() -> dict[str, str]:
    """The environment without CORAL_* (as tests/conftest.py's ``coral`` fixture runs)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CORAL_")}


@pytest.fixture(scope="session")
def mosquitto_binary() -> str:
    path = find_mosquitto()
    if path is None:
        pytest.skip("mosquitto not installed (apt-get install -y mosquitto)")
    return path


@pytest.fixture
def broker_factory(mosquitto_binary: str, tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    """``broker_factory(users=None)``: a prepared, not yet started broker; all stopped after."""
    brokers: list[Mosquitto] = []

    def prepare(users: dict[str, str] | None = None) -> Mosquitto:
        broker = Mosquitto(mosquitto_binary, tmp_path / f"mosquitto{len(brokers)}", users=users)
        brokers.append(broker)
        return broker

    yield prepare
    for broker in brokers:
        broker.stop()


@pytest.fixture
def broker(broker_factory: Callable[..., Mosquitto]) -> Mosquitto:
    """A started anonymous broker."""
    started = broker_factory()
    started.start()
    return started


@pytest.fixture
def recorder_factory() -> Iterator[Callable[..., Recorder]]:
    """``recorder_factory(port, client_id, ...)``: a subscriber to ``#``, subscribed."""
    recorders: list[Recorder] = []

    def make(port: int, client_id: str, **options: object) -> Recorder:
        recorder = Recorder(port, client_id, **options)  # type: ignore[arg-type]
        recorders.append(recorder)
        if not recorder.subscribed.wait(60):
            raise AssertionError(f"subscriber {client_id} not subscribed within 60 s")
        return recorder

    yield make
    for recorder in recorders:
        recorder.stop()


@pytest.fixture
def coral_process(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """``coral_process(*args)``: ``coral ARGS`` started in the background (output to files
    ``coral.out`` / ``coral.err`` in tmp_path); killed after the test if still running."""
    from coral_inference.testing.processes import stop_process

    started: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        out = (tmp_path / "coral.out").open("w")
        err = (tmp_path / "coral.err").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "coral_inference.cli", *args],
            stdout=out,
            stderr=err,
            text=True,
            env=clean_env(),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )
        out.close()
        err.close()
        started.append(process)
        return process

    yield start
    for process in started:
        stop_process(process, timeout=30)
