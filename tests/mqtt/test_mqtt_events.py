"""The event state machine (hysteresis, throttling, per source) and the payloads, no broker."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from coral_inference_mqtt.events import EventTracker, SourceTracker, class_counts
from coral_inference_mqtt.messages import Discovery, Topics, event_payload, topic_level
from coral_inference_mqtt.options import MqttConfigError, MqttSettings, _check

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def feed(tracker: SourceTracker, frames: list[dict[str, int]], step_ms: int = 40):
    """Events as (kind, class, count, previous, frame_id) for consecutive frames from 1."""
    out = []
    for index, counts in enumerate(frames, start=1):
        stamp = T0 + timedelta(milliseconds=step_ms * (index - 1))
        out += [
            (e.kind, e.class_name, e.count, e.previous, e.frame_id)
            for e in tracker.observe(counts, index, stamp)
        ]
    return out


def test_a_class_starts_updates_and_ends_after_n_steady_frames():
    tracker = SourceTracker(hysteresis_frames=3)
    person = [{"person": 1}] * 4 + [{"person": 2}] * 3 + [{}] * 3
    assert feed(tracker, person) == [
        ("start", "person", 1, 0, 3),
        ("update", "person", 2, 1, 7),
        ("end", "person", 0, 2, 10),
    ]
    assert tracker.reported == {}


def test_flicker_shorter_than_the_hysteresis_reports_nothing():
    tracker = SourceTracker(hysteresis_frames=3)
    frames = [{"cat": 1}, {}, {"cat": 1}, {"cat": 1}, {}, {"cat": 1}]
    assert feed(tracker, frames) == []
    # present: a one-frame dropout or a one-frame count change is ignored too
    tracker = SourceTracker(hysteresis_frames=3)
    steady = [{"cat": 2}] * 3 + [{}, {"cat": 2}, {"cat": 3}, {"cat": 2}, {}, {}, {"cat": 2}]
    assert feed(tracker, steady) == [("start", "cat", 2, 0, 3)]


def test_a_start_reports_the_latest_count_and_an_update_the_latest_different_one():
    tracker = SourceTracker(hysteresis_frames=3)
    frames = [{"car": 1}, {"car": 2}, {"car": 3}, {"car": 4}, {"car": 5}, {"car": 5}]
    assert feed(tracker, frames) == [("start", "car", 3, 0, 3), ("update", "car", 5, 3, 6)]


def test_hysteresis_one_reports_every_change_at_once_and_classes_are_independent():
    tracker = SourceTracker(hysteresis_frames=1)
    frames = [{"a": 1}, {"a": 1, "b": 2}, {"b": 1}]
    assert feed(tracker, frames) == [
        ("start", "a", 1, 0, 1),
        ("start", "b", 2, 0, 2),
        ("end", "a", 0, 1, 3),
        ("update", "b", 1, 2, 3),
    ]


def test_min_interval_holds_updates_back_but_never_start_or_end():
    tracker = SourceTracker(hysteresis_frames=1, min_interval_ms=100)
    # 40 ms apart: frame 1 start, 2..3 changes held (80 ms), 4 (120 ms) reports the latest
    frames = [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}, {}]
    assert feed(tracker, frames) == [
        ("start", "a", 1, 0, 1),
        ("update", "a", 4, 1, 4),
        ("end", "a", 0, 4, 5),
    ]
    # a held change that goes back to the reported count is never sent
    tracker = SourceTracker(hysteresis_frames=1, min_interval_ms=100)
    assert feed(tracker, [{"a": 1}, {"a": 2}, {"a": 1}, {"a": 1}]) == [("start", "a", 1, 0, 1)]


def test_finish_ends_every_present_class_and_pending_changes_are_dropped():
    tracker = SourceTracker(hysteresis_frames=2)
    feed(tracker, [{"a": 1, "b": 1}] * 2 + [{"a": 1, "c": 1}])
    ended = tracker.finish(9, T0, source_id=0)
    assert [(e.kind, e.class_name, e.previous, e.reason) for e in ended] == [
        ("end", "a", 1, "pipeline_ended"),
        ("end", "b", 1, "pipeline_ended"),
    ]
    assert tracker.finish(10, T0) == []


def test_sources_are_tracked_apart_and_counts_sum_over_them():
    tracker = EventTracker(hysteresis_frames=2)
    one = {"predictions": [{"class": "dog"}]}
    two = {"predictions": [{"class": "dog"}, {"class": "dog"}]}
    events = []
    for frame in range(1, 5):  # two cameras alternate frames: no flicker between them
        events += tracker.observe(one, frame, T0, source_id=0)
        events += tracker.observe(two, frame, T0, source_id=1)
    assert [(e.kind, e.source_id, e.count) for e in events] == [("start", 0, 1), ("start", 1, 2)]
    assert tracker.counts() == {"dog": 3}
    assert tracker.source_counts() == {"0": {"dog": 1}, "1": {"dog": 2}}
    assert tracker.observe(None, 5, T0, source_id=0) == []  # a frame without result: no change
    ended = tracker.finish(T0)
    assert [(e.kind, e.source_id, e.frame_id) for e in ended] == [("end", 0, 4), ("end", 1, 4)]
    assert tracker.counts() == {"dog": 0}


def test_class_counts_reads_inference_predictions():
    assert class_counts(None) is None
    assert class_counts({"predictions": []}) == {}
    assert class_counts({"predictions": [{"class": "a"}, {"class": "a"}, {"class": "b"}]}) == {
        "a": 2,
        "b": 1,
    }


def test_payloads_and_discovery_reference_the_state_topics():
    topics = Topics("coral", "cam/1+#")
    assert topic_level("cam/1+#") == "cam_1__"
    assert topics.events == "coral/cam_1__/events"
    assert topics.counts == "coral/cam_1__/counts"
    [event] = SourceTracker(1).observe({"face": 2}, 7, T0, 0)
    body = json.loads(event_payload(event, "cam/1+#", 5))
    assert body == {
        "event": "start",
        "pipeline": "cam/1+#",
        "class": "face",
        "count": 2,
        "previous": 0,
        "source_id": 0,
        "frame_id": 7,
        "timestamp": T0.isoformat(),
        "seq": 5,
    }
    discovery = Discovery("homeassistant", topics)
    topic, payload = discovery.class_count('my "face"')
    config = json.loads(payload)
    assert topic == "homeassistant/sensor/coral_cam_1__/my__face__count/config"
    assert config["state_topic"] == topics.counts
    assert config["availability_topic"] == "coral/availability"
    assert config["value_template"] == '{{ value_json.counts["my \\"face\\""] | default(0) }}'
    topic, payload = discovery.detected()
    assert topic == "homeassistant/binary_sensor/coral_cam_1__/detected/config"
    assert json.loads(payload)["state_topic"] == topics.counts


def test_settings_checks_and_password_file(tmp_path):
    assert _check({"password_file": "/x", "topic_prefix": "coral", "discovery_prefix": "ha"}) == [
        ("password_file", "a password needs services.mqtt.username; set it, or drop the file")
    ]
    assert [k for k, _ in _check({"topic_prefix": "a/#", "discovery_prefix": "ha"})] == [
        "topic_prefix"
    ]
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    settings = MqttSettings.from_section({"username": "u", "password_file": str(secret)})
    assert settings.password() == "s3cret"
    missing = MqttSettings.from_section({"username": "u", "password_file": str(tmp_path / "no")})
    with pytest.raises(MqttConfigError, match="services.mqtt.password_file: cannot read"):
        missing.password()
