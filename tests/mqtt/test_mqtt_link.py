"""The broker connection alone (no inference) against a real mosquitto: what is published while
the broker is down is delivered once it is back, exactly as counted; ``offline`` on close.
Runs with whichever paho-mqtt is installed (1.6 with inference, 2.x elsewhere)."""

from __future__ import annotations

import json
import time

import pytest
from mqtt_helpers import Mosquitto

pytest.importorskip("paho.mqtt")

from coral_inference_mqtt.link import MqttLink, Outgoing  # noqa: E402
from coral_inference_mqtt.options import MqttSettings  # noqa: E402

DEADLINE_S = 120
#: Published while the broker is down (the buffer holds 1000 by default).
OUTAGE_EVENTS = 500


def event(number: int) -> Outgoing:
    return Outgoing("coral/p/events", json.dumps({"seq": number}), event=True)


def seqs(recorder) -> set[int]:
    return {m.json()["seq"] for m in recorder.on("coral/p/events")}


def test_messages_published_while_the_broker_is_down_arrive_after_it_is_back(
    broker: Mosquitto, recorder_factory
):
    recorder = recorder_factory(broker.port, "durable")
    settings = MqttSettings(enabled=True, host="127.0.0.1", port=broker.port, client_id="link")
    link = MqttLink(settings)
    link.start()
    recorder.wait_for(
        lambda: bool(recorder.on("coral/availability")), DEADLINE_S, "online after connecting"
    )
    for number in range(1, 6):
        link.publish(event(number))
    recorder.wait_for(lambda: seqs(recorder) == set(range(1, 6)), DEADLINE_S, "events 1-5")

    broker.stop()
    for number in range(6, OUTAGE_EVENTS + 6):
        link.publish(event(number))
    link.add_state("homeassistant/sensor/x/config", "{}")  # sent on the next connect
    broker.start()
    stats = link.close(DEADLINE_S)

    total = OUTAGE_EVENTS + 5
    print(f"MQTT link across a broker restart: {stats.events_delivered}/{total} delivered")
    assert (stats.events_produced, stats.events_delivered) == (total, total), stats
    assert (stats.events_dropped, stats.events_undelivered) == (0, 0), stats
    recorder.wait_for(lambda: seqs(recorder) == set(range(1, total + 1)), DEADLINE_S, "every event")
    recorder.wait_for(
        lambda: [m.payload for m in recorder.on("coral/availability")][-1:] == [b"offline"],
        DEADLINE_S,
        "offline on close",
    )
    recorder.wait_for(
        lambda: bool(recorder.on("homeassistant/sensor/x/config")), DEADLINE_S, "the state"
    )
    recorder.wait_for(lambda: bool(recorder.on("coral/stats")), DEADLINE_S, "the stats")
    final = recorder.on("coral/stats")[-1].json()
    assert final["events_produced"] == final["events_delivered"] == total, final
    assert (final["events_dropped"], final["reconnects"]) == (0, 1), final
    # in order (a QoS 1 redelivery may repeat one)
    firsts = list(dict.fromkeys(m.json()["seq"] for m in recorder.on("coral/p/events")))
    assert firsts == sorted(firsts)


def test_a_closed_link_without_broker_returns_at_once_counting_what_is_left(broker_factory):
    from coral_inference.testing.influxdb import free_port

    settings = MqttSettings(enabled=True, host="127.0.0.1", port=free_port(), queue_size=3)
    link = MqttLink(settings)
    link.start()
    for number in range(1, 6):
        link.publish(event(number))
    stats = link.close(0)
    assert (stats.events_produced, stats.events_delivered) == (5, 0)
    assert (stats.events_dropped, stats.events_undelivered) == (2, 3)


def test_wrong_credentials_are_one_error_and_no_retries(broker_factory, caplog):
    secured = broker_factory(users={"coral": "right-pass"})
    secured.start()
    settings = MqttSettings(enabled=True, host="127.0.0.1", port=secured.port, username="coral")
    link = MqttLink(settings, password="wrong-pass")
    with caplog.at_level("INFO", logger="coral_inference_mqtt"):
        link.start()
        link.publish(event(1))
        deadline = time.monotonic() + DEADLINE_S
        while link.stats().refused is None and time.monotonic() < deadline:
            time.sleep(0.1)  # polling the link's state, nothing to wait on
        stats = link.close(5)
    assert stats.refused in ("bad user name or password", "not authorised")
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, [r.getMessage() for r in caplog.records]
    message = errors[0].getMessage()
    assert f"broker 127.0.0.1:{secured.port} refused user 'coral'" in message
    assert "services.mqtt.username" in message and "services.mqtt.password_file" in message
    assert (stats.events_produced, stats.events_delivered, stats.events_undelivered) == (1, 0, 1)
