"""The broker connection: one paho client behind a bounded buffer that survives outages.

Sinks hand messages to :meth:`MqttLink.publish`, which only appends to a buffer of
``queue_size`` messages (full: the oldest is dropped and counted, logged once). A sender thread
passes them to paho while connected, at most :data:`WINDOW` unacknowledged at a time, and
counts a message delivered when the broker acknowledges it (QoS 1/2). When the broker goes
away, paho keeps the unacknowledged ones and sends them again after reconnecting; new messages
wait in the buffer until those are acknowledged, so retained counts keep their order.

Availability: ``PREFIX/availability`` is ``online`` (retained) on every connect, the last will
says ``offline`` when the connection dies, and :meth:`MqttLink.close` publishes ``offline``.
Retained "state" messages (Home Assistant discovery) are sent again on every connect.
``PREFIX/stats`` (retained) carries the counters (events produced, delivered, dropped...):
after each reconnect that followed an outage, and at exit.
Works with paho-mqtt 1.6 and 2.x (``CallbackAPIVersion.VERSION2`` when present).
"""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from coral_inference_mqtt.messages import OFFLINE, ONLINE
from coral_inference_mqtt.options import MqttSettings

log = logging.getLogger(__name__)

#: Messages handed to paho and not yet acknowledged, at most.
WINDOW = 10
#: paho's reconnect back-off, seconds (doubling from the first to the second).
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 8
KEEPALIVE_S = 30
#: After a reconnect, how long new messages wait for the resent ones' acknowledgements.
RESYNC_TIMEOUT_S = 30.0
#: Extra wait for the ``offline`` message at exit, past ``flush_timeout_s``.
OFFLINE_TIMEOUT_S = 5.0
#: CONNACK codes (MQTT 3.1.1, and paho 2's MQTT 5 reason codes) meaning "wrong credentials".
AUTH_REFUSED = {
    4: "bad user name or password",
    5: "not authorised",
    134: "bad user name or password",
    135: "not authorised",
}


@dataclass
class Outgoing:
    """One message to publish; ``event`` marks the ones the delivery figures count."""

    topic: str
    payload: str
    retain: bool = False
    qos: int = 1
    event: bool = False
    acked: threading.Event | None = None


@dataclass
class LinkStats:
    """What happened to the messages handed to the link (events also counted on their own)."""

    events_produced: int = 0
    events_delivered: int = 0
    events_dropped: int = 0
    events_undelivered: int = 0
    messages_delivered: int = 0
    messages_dropped: int = 0
    messages_undelivered: int = 0
    reconnects: int = 0
    refused: str | None = None

    def lost(self) -> int:
        return self.events_produced - self.events_delivered


def _code(value: Any) -> int:
    """An int from a paho 1.6 rc or a paho 2 ReasonCode."""
    return int(getattr(value, "value", value))


def make_client(client_id: str) -> Any:
    """A paho client with the 2.x callback API when available (1.6 has only one)."""
    import paho.mqtt.client as mqtt

    version = getattr(mqtt, "CallbackAPIVersion", None)
    if version is not None:
        return mqtt.Client(version.VERSION2, client_id=client_id, clean_session=True)
    return mqtt.Client(client_id=client_id, clean_session=True)


@dataclass
class _Outage:
    """Whether the broker is away, so each outage is logged once."""

    away: bool = False


class MqttLink:
    """One process's connection to the broker; thread-safe."""

    def __init__(self, settings: MqttSettings, password: str | None = None) -> None:
        self.settings = settings
        self.availability_topic = f"{settings.topic_prefix}/availability"
        self.stats_topic = f"{settings.topic_prefix}/stats"
        self._password = password
        self._client: Any = None
        self._cond = threading.Condition()
        self._buffer: collections.deque[Outgoing] = collections.deque()
        self._inflight: dict[int, Outgoing] = {}
        self._early_acks: set[int] = set()
        self._state: dict[str, str] = {}
        self._stats = LinkStats()
        self._connected = False
        self._ever_connected = False
        self._resync_until: float | None = None
        self._outage = _Outage()
        self._overflow_logged = False
        self._stop_sender = False
        self._closed = False
        self._sender: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (paho's thread retries until the broker answers)."""
        with self._cond:
            if self._client is not None or self._closed:
                return
            self._client = client = make_client(self.settings.resolved_client_id())
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        if self.settings.username:
            client.username_pw_set(self.settings.username, self._password)
        if self.settings.tls:
            client.tls_set()
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.connect_async(self.settings.host, self.settings.port, keepalive=KEEPALIVE_S)
        client.loop_start()
        self._sender = threading.Thread(target=self._send_loop, name="coral-mqtt-send", daemon=True)
        self._sender.start()
        log.info("MQTT: connecting to broker %s", self.settings.broker)

    def close(self, timeout: float) -> LinkStats:
        """Wait up to ``timeout`` s for the buffer to reach the broker, publish ``offline``,
        disconnect; log and return the delivery figures."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._closed:
                return self.stats()
            self._closed = True
            client = self._client
            if client is None:  # never connected: nothing to flush or report
                return self.stats()
            while (self._buffer or self._inflight) and self._stats.refused is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 1.0))
            connected = self._connected
        if connected and self._stats.refused is None:
            with self._cond:
                final = self._stats_message()
            self._send(final)
            offline = Outgoing(
                self.availability_topic, OFFLINE, retain=True, acked=threading.Event()
            )
            self._send(offline)
            assert offline.acked is not None
            offline.acked.wait(max(deadline - time.monotonic(), 0) + OFFLINE_TIMEOUT_S)
        with self._cond:
            self._stop_sender = True
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(5)
        client.disconnect()
        client.loop_stop()
        with self._cond:
            left = [*self._buffer, *self._inflight.values()]
            self._stats.messages_undelivered = len(left)
            self._stats.events_undelivered = sum(m.event for m in left)
            stats = self.stats()
        self._log_summary(stats)
        return stats

    def stats(self) -> LinkStats:
        """A copy of the counters so far."""
        with self._cond:
            return LinkStats(**vars(self._stats))

    def _stats_message(self) -> Outgoing:
        """``PREFIX/stats`` (retained): the counters now; caller holds the lock."""
        counters = {k: v for k, v in vars(self._stats).items() if k != "refused"}
        return Outgoing(self.stats_topic, json.dumps(counters, sort_keys=True), retain=True)

    # -- what the sinks call ----------------------------------------------------------------

    def publish(self, message: Outgoing) -> None:
        """Queue a message (never blocks); past ``queue_size`` the oldest is dropped."""
        overflow = False
        with self._cond:
            if message.event:
                self._stats.events_produced += 1
            if len(self._buffer) >= self.settings.queue_size:
                old = self._buffer.popleft()
                self._stats.messages_dropped += 1
                self._stats.events_dropped += int(old.event)
                overflow = not self._overflow_logged
                self._overflow_logged = True
            self._buffer.append(message)
            self._cond.notify_all()
        if overflow:
            log.warning(
                "MQTT: buffer full (services.mqtt.queue_size=%d) while broker %s is away or "
                "slow: dropping the oldest messages (counted; the summary at exit says how many)",
                self.settings.queue_size,
                self.settings.broker,
            )

    def add_state(self, topic: str, payload: str) -> None:
        """A retained message sent now when connected and again on every connect."""
        with self._cond:
            if self._state.get(topic) == payload:
                return
            self._state[topic] = payload
            connected = self._connected
        if connected:
            self._send(Outgoing(topic, payload, retain=True))

    # -- sending ------------------------------------------------------------------------------

    def _send(self, message: Outgoing) -> None:
        """Hand one message to paho and track its acknowledgement."""
        client = self._client
        try:
            info = client.publish(
                message.topic, message.payload, qos=message.qos, retain=message.retain
            )
        except (ValueError, TypeError) as exc:  # a topic or payload paho refuses
            log.error("MQTT: cannot publish to %r: %s", message.topic, exc)
            with self._cond:
                self._stats.messages_dropped += 1
                self._stats.events_dropped += int(message.event)
            return
        with self._cond:
            if info.mid in self._early_acks:
                self._early_acks.discard(info.mid)
                self._acked(message)
            else:
                self._inflight[info.mid] = message

    def _acked(self, message: Outgoing) -> None:
        """Count a delivered message; caller holds the lock."""
        self._stats.messages_delivered += 1
        self._stats.events_delivered += int(message.event)
        if message.acked is not None:
            message.acked.set()
        self._cond.notify_all()

    def _ready(self) -> bool:
        """A buffered message may go now; caller holds the lock."""
        if not (self._connected and self._buffer and len(self._inflight) < WINDOW):
            return False
        if self._resync_until is not None:
            if self._inflight and time.monotonic() < self._resync_until:
                return False
            self._resync_until = None
        return True

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop_sender and not self._ready():
                    self._cond.wait(1.0 if self._resync_until is not None else None)
                if self._stop_sender:
                    return
                message = self._buffer.popleft()
            self._send(message)

    # -- paho callbacks (paho's network thread; 1.6 and 2.x signatures) -----------------------

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, rc: Any, properties: Any = None
    ) -> None:
        code = _code(rc)
        if code in AUTH_REFUSED:
            self._refuse(client, code)
            return
        if code != 0:
            self._went_away(f"it refused the connection (code {code}: {rc})")
            return
        with self._cond:
            self._connected = True
            if self._inflight:
                self._resync_until = time.monotonic() + RESYNC_TIMEOUT_S
            was_away, first = self._outage.away, not self._ever_connected
            self._ever_connected = True
            if was_away and not first:
                self._stats.reconnects += 1
            self._outage = _Outage()
            buffered = len(self._buffer) + len(self._inflight)
            states = list(self._state.items())
            if was_away:  # after the buffered ones: what the outage cost, for subscribers
                self._buffer.append(self._stats_message())
        if first:
            log.info("MQTT: connected to broker %s", self.settings.broker)
        if was_away:
            log.warning(
                "MQTT: broker %s answers again; sending %d buffered messages",
                self.settings.broker,
                buffered,
            )
        self._send(Outgoing(self.availability_topic, ONLINE, retain=True))
        for topic, payload in states:
            self._send(Outgoing(topic, payload, retain=True))

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._went_away("it does not answer")

    def _on_disconnect(self, client: Any, userdata: Any, *args: Any) -> None:
        rc = args[0] if len(args) == 1 else args[1]
        with self._cond:
            self._connected = False
            # QoS 0 messages are not resent: gone with the connection, counted as dropped.
            for mid in [m for m, msg in self._inflight.items() if msg.qos == 0]:
                lost = self._inflight.pop(mid)
                self._stats.messages_dropped += 1
                self._stats.events_dropped += int(lost.event)
            closing = self._closed or self._stats.refused is not None
        if not closing and _code(rc) != 0:
            self._went_away(f"the connection dropped, code {_code(rc)}")

    def _on_publish(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        with self._cond:
            message = self._inflight.pop(mid, None)
            if message is None:
                self._early_acks.add(mid)  # acknowledged before _send recorded it
            else:
                self._acked(message)

    def _went_away(self, why: str) -> None:
        with self._cond:
            if self._outage.away:
                return
            self._outage = _Outage(away=True)
        log.warning(
            "MQTT: broker %s unreachable (%s); buffering events (services.mqtt.queue_size=%d) "
            "and sending them once it answers",
            self.settings.broker,
            why,
            self.settings.queue_size,
        )

    def _refuse(self, client: Any, code: int) -> None:
        """Wrong credentials: one error line, and no more attempts (they cannot succeed)."""
        reason = AUTH_REFUSED[code]
        with self._cond:
            first = self._stats.refused is None
            self._stats.refused = reason
            self._cond.notify_all()
        if first:
            who = (
                f"user {self.settings.username!r}" if self.settings.username else "anonymous login"
            )
            log.error(
                "MQTT: broker %s refused %s (%s): check services.mqtt.username and "
                "services.mqtt.password_file against the broker's accounts; no events are "
                "published until coral restarts with working credentials",
                self.settings.broker,
                who,
                reason,
            )
        client.disconnect()  # ends paho's loop: no reconnect attempts

    def _log_summary(self, stats: LinkStats) -> None:
        message = (
            "MQTT broker %s: %d events produced, %d delivered, %d dropped (buffer full, "
            "services.mqtt.queue_size=%d), %d not delivered by exit "
            "(services.mqtt.flush_timeout_s=%g)"
        )
        values = (
            self.settings.broker,
            stats.events_produced,
            stats.events_delivered,
            stats.events_dropped,
            self.settings.queue_size,
            stats.events_undelivered,
            self.settings.flush_timeout_s,
        )
        if stats.refused is not None:
            log.warning(message + "; the broker refused the credentials", *values)
        elif stats.lost():
            log.warning(message, *values)
        else:
            log.info(message, *values)
