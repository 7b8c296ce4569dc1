"""coral-inference-mqtt end to end: ``coral run --demo`` on real inference publishing to a real
mosquitto, a paho subscriber checking what arrives. No broker is mocked: outages are the broker
stopped and started again, the last will is the coral process killed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from mqtt_helpers import Message, Mosquitto, Recorder

from coral_inference_mqtt.events import EventTracker

pytestmark = pytest.mark.integration
pytest.importorskip("paho.mqtt", reason="paho-mqtt comes with inference")

#: What the runs need: the sample model, the frame-sink patch and this plugin.
ONLY = "[onnx,local_models,frame_sinks,mqtt]"
EVENTS, COUNTS, AVAILABILITY = (
    "coral/coral-run/events",
    "coral/coral-run/counts",
    "coral/availability",
)
#: Generous: a loaded CI machine takes minutes to start inference.
DEADLINE_S = 300
SUMMARY = re.compile(
    r"MQTT broker \S+: (\d+) events produced, (\d+) delivered, (\d+) dropped .*?, "
    r"(\d+) not delivered by exit"
)


def run_args(tmp_path: Path, port: int, *extra: str) -> list[str]:
    return [
        "-v",
        "run",
        "--demo",
        "--json",
        "--output-dir",
        str(tmp_path / "out"),
        "--save-predictions",
        str(tmp_path / "predictions.jsonl"),
        "--set",
        f"plugins.only={ONLY}",
        "--set",
        "services.mqtt.enabled=true",
        "--set",
        "services.mqtt.host=127.0.0.1",
        "--set",
        f"services.mqtt.port={port}",
        *extra,
    ]


def expected_events(predictions: Path, hysteresis: int = 3) -> list[tuple]:
    """The events the saved predictions imply, by the plugin's own state machine."""
    tracker = EventTracker(hysteresis)
    events = []
    for line in predictions.read_text().splitlines():
        frame = json.loads(line)
        boxes = {"predictions": [{"class": d["class"]} for d in frame["detections"]]}
        stamp = datetime.fromisoformat(frame["timestamp"])
        events += tracker.observe(boxes, frame["frame_id"], stamp, frame["source_id"])
    events += tracker.finish(stamp)
    return [(e.kind, e.class_name, e.count, e.frame_id) for e in events]


def received(messages: list[Message]) -> list[tuple]:
    """Events as (kind, class, count, frame_id) in ``seq`` order, duplicates (QoS 1) once."""
    by_seq = {m.json()["seq"]: m.json() for m in messages}
    return [(e["event"], e["class"], e["count"], e["frame_id"]) for _, e in sorted(by_seq.items())]


def payloads(recorder: Recorder, topic: str) -> list[str]:
    return [m.payload.decode() for m in recorder.on(topic)]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)  # polling a file / process, not synchronising with the code under test


def test_a_demo_run_publishes_events_counts_discovery_and_goes_offline(
    broker: Mosquitto, recorder_factory, coral, tmp_path
):
    live = recorder_factory(broker.port, "live")
    result = coral(*run_args(tmp_path, broker.port), timeout=600)
    summary = json.loads(result.stdout)
    assert summary["exit_code"] == 0, result.stderr
    assert summary["frame_sinks"]["mqtt"] == {
        "frames": summary["frames"],
        "dropped": 0,
        "failed": 0,
        "pending": 0,
    }
    live.wait_for(lambda: OFFLINE_LAST(live), DEADLINE_S, "availability offline after the run")
    assert payloads(live, AVAILABILITY) == ["online", "offline"]

    events = [m.json() for m in live.on(EVENTS)]
    expected = expected_events(tmp_path / "predictions.jsonl")
    assert received(live.on(EVENTS)) == expected
    assert [e["seq"] for e in events] == list(range(1, len(expected) + 1))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("start") >= 2, kinds
    assert events[-1]["reason"] == "pipeline_ended"
    assert {e["pipeline"] for e in events} == {"coral-run"}
    produced, delivered, dropped, undelivered = map(int, SUMMARY.search(result.stderr).groups())
    assert (produced, delivered, dropped, undelivered) == (len(expected), len(expected), 0, 0)

    counts = [m.json() for m in live.on(COUNTS)]
    assert counts[0]["total"] == 0  # published at the pipeline's start
    assert any(c["counts"].get("face", 0) >= 1 for c in counts)
    assert counts[-1]["counts"] == {"face": 0} and counts[-1]["total"] == 0

    # What a subscriber arriving later gets: the retained state.
    late = recorder_factory(broker.port, "late", clean=True)
    discovery = {
        "homeassistant/binary_sensor/coral_coral-run/detected/config",
        "homeassistant/sensor/coral_coral-run/face_count/config",
    }
    retained = {AVAILABILITY, COUNTS, *discovery}
    late.wait_for(
        lambda: retained <= {m.topic for m in late.messages}, DEADLINE_S, "the retained state"
    )
    assert [(m.payload, m.retain) for m in late.on(AVAILABILITY)] == [(b"offline", True)]
    [retained_counts] = late.on(COUNTS)
    assert retained_counts.retain and retained_counts.json()["total"] == 0
    assert late.on(EVENTS) == []  # events are not retained
    configs = {m.topic: m for m in late.messages if m.topic.startswith("homeassistant/")}
    assert set(configs) == discovery
    for message in configs.values():
        config = message.json()
        assert message.retain
        assert config["state_topic"] == COUNTS
        assert config["availability_topic"] == AVAILABILITY
        assert (config["payload_available"], config["payload_not_available"]) == (
            "online",
            "offline",
        )
    sensor = configs["homeassistant/sensor/coral_coral-run/face_count/config"].json()
    assert sensor["value_template"] == '{{ value_json.counts["face"] | default(0) }}'


def OFFLINE_LAST(recorder: Recorder) -> bool:  # noqa: N802 - reads as a condition
    said = recorder.on(AVAILABILITY)
    return bool(said) and said[-1].payload == b"offline"


def test_the_last_will_says_offline_when_coral_is_killed(
    broker: Mosquitto, recorder_factory, coral_process, tmp_path
):
    watcher = recorder_factory(broker.port, "watcher")
    process = coral_process(*run_args(tmp_path, broker.port))
    watcher.wait_for(lambda: bool(watcher.on(EVENTS)), DEADLINE_S, "a first event")
    assert payloads(watcher, AVAILABILITY) == ["online"]
    process.kill()
    process.wait(60)
    watcher.wait_for(lambda: OFFLINE_LAST(watcher), DEADLINE_S, "the last will (offline)")
    assert payloads(watcher, AVAILABILITY) == ["online", "offline"]
    late = recorder_factory(broker.port, "late", clean=True)
    late.wait_for(lambda: bool(late.on(AVAILABILITY)), DEADLINE_S, "retained availability")
    assert [(m.payload, m.retain) for m in late.on(AVAILABILITY)] == [(b"offline", True)]


def test_events_produced_while_the_broker_is_down_arrive_after_it_restarts(
    broker: Mosquitto, recorder_factory, coral_process, tmp_path
):
    # A persistent QoS 1 session: the broker keeps for this subscriber what arrives while it is
    # still reconnecting after the restart.
    subscriber = recorder_factory(broker.port, "durable")
    predictions = tmp_path / "predictions.jsonl"
    process = coral_process(
        *run_args(tmp_path, broker.port, "--set", "services.mqtt.flush_timeout_s=120")
    )
    subscriber.wait_for(lambda: bool(subscriber.on(EVENTS)), DEADLINE_S, "a first event")
    broker.stop()

    def saved_frames() -> int:
        lines = predictions.read_text().splitlines() if predictions.exists() else []
        return json.loads(lines[-1])["frame_id"] if lines else 0

    # Down across the face's first disappearance (frame ~93) and reappearance (~123).
    wait_until(lambda: saved_frames() >= 130 or process.poll() is not None, 600, "frame 130")
    assert process.poll() is None, "the run ended before the broker came back; nothing to test"
    down_until = saved_frames()
    broker.start()
    assert process.wait(600) == 0, (tmp_path / "coral.err").read_text()
    stderr = (tmp_path / "coral.err").read_text()
    subscriber.wait_for(lambda: OFFLINE_LAST(subscriber), DEADLINE_S, "offline after the run")

    expected = expected_events(predictions)
    produced, delivered, dropped, undelivered = map(int, SUMMARY.search(stderr).groups())
    got = received(subscriber.on(EVENTS))
    print(f"MQTT across a broker restart: {len(got)}/{produced} events delivered")
    assert got == expected
    assert (produced, delivered, dropped, undelivered) == (len(expected), len(expected), 0, 0)
    assert "unreachable" in stderr and "answers again; sending" in stderr, stderr
    buffered = int(re.search(r"answers again; sending (\d+) buffered", stderr).group(1))
    assert buffered >= 1, stderr
    # Some of them happened while the broker was down.
    assert any(3 < frame <= down_until for _, _, _, frame in got), (got, down_until)
    final = [m.json() for m in subscriber.on(COUNTS)][-1]
    assert final["total"] == 0
    # The counters for subscribers: after the reconnect, and the final ones at exit.
    stats = [m.json() for m in subscriber.on("coral/stats") if not m.retain]  # live ones
    assert len(stats) == 2, stats
    assert stats[-1]["events_produced"] == stats[-1]["events_delivered"] == produced
    assert (stats[-1]["events_dropped"], stats[-1]["reconnects"]) == (0, 1)
    print(f"coral/stats at exit: {json.dumps(stats[-1], sort_keys=True)}")


def test_wrong_credentials_are_one_clear_error_and_right_ones_publish(
    broker_factory, recorder_factory, coral, tmp_path
):
    secured = broker_factory(users={"coral": "right-pass", "watch": "watch-pass"})
    secured.start()
    watcher = recorder_factory(secured.port, "watcher", username="watch", password="watch-pass")
    password_file = tmp_path / "mqtt-password"
    password_file.write_text("wrong-pass\n")
    credentials = (
        "--set",
        "services.mqtt.username=coral",
        "--set",
        f"services.mqtt.password_file={password_file}",
    )
    args = run_args(tmp_path, secured.port, "--max-frames", "20", *credentials)
    result = coral(*args, timeout=600)
    assert json.loads(result.stdout)["exit_code"] == 0, result.stderr
    errors = [line for line in result.stderr.splitlines() if "services.mqtt.username" in line]
    assert len(errors) == 1, result.stderr
    assert f"broker 127.0.0.1:{secured.port} refused user 'coral'" in errors[0]
    assert errors[0].startswith("ERROR ")
    assert "Traceback" not in result.stderr
    assert watcher.on(EVENTS) == []

    password_file.write_text("right-pass\n")
    result = coral(*args, timeout=600)
    assert json.loads(result.stdout)["exit_code"] == 0, result.stderr
    watcher.wait_for(lambda: OFFLINE_LAST(watcher), DEADLINE_S, "offline after the run")
    assert [e[0] for e in received(watcher.on(EVENTS))] == ["start", "end"]
    assert "services.mqtt.username" not in result.stderr


def test_without_a_broker_the_buffer_overflows_counted_and_logged_once(coral, tmp_path):
    from coral_inference.testing.influxdb import free_port

    port = free_port()  # nothing listens there
    extra = ("--max-frames", "100", "--set", "services.mqtt.queue_size=2")
    extra += ("--set", "services.mqtt.flush_timeout_s=0")
    result = coral(*run_args(tmp_path, port, *extra), timeout=600)
    summary = json.loads(result.stdout)
    assert summary["exit_code"] == 0, result.stderr
    assert summary["frame_sinks"]["mqtt"]["failed"] == 0
    lines = result.stderr.splitlines()
    assert len([line for line in lines if "unreachable" in line]) == 1, result.stderr
    [full] = [line for line in lines if "buffer full" in line and "dropping" in line]
    assert "services.mqtt.queue_size=2" in full
    # initial counts, start, counts, end, counts through a buffer of 2: the start event and two
    # counts are dropped, the end event is still waiting at exit.
    produced, delivered, dropped, undelivered = map(int, SUMMARY.search(result.stderr).groups())
    assert (produced, delivered, dropped, undelivered) == (2, 0, 1, 1), result.stderr
    assert "Traceback" not in result.stderr
