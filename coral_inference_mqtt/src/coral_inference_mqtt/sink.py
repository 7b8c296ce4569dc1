"""One pipeline's frame sink: frames in, events and retained counts out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from coral_inference_mqtt.events import ClassEvent, EventTracker
from coral_inference_mqtt.link import MqttLink, Outgoing
from coral_inference_mqtt.messages import Discovery, Topics, counts_payload, event_payload
from coral_inference_mqtt.options import MqttSettings

if TYPE_CHECKING:
    from coral_inference.services.frame_sinks import FrameResult


class MqttPipelineSink:
    """Tracks one pipeline's classes and publishes what changes (``on_frame`` / ``close``).

    ``close`` may come from the pipeline's end or from the runtime shutting down first;
    whichever is first publishes the ``end`` events, the other does nothing.
    """

    def __init__(
        self,
        pipeline_id: str,
        settings: MqttSettings,
        link: MqttLink,
        on_close: Callable[[MqttPipelineSink], None] | None = None,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.settings = settings
        self.link = link
        self.topics = Topics(settings.topic_prefix, pipeline_id)
        self.discovery = (
            Discovery(settings.discovery_prefix, self.topics) if settings.discovery else None
        )
        self.tracker = EventTracker(settings.hysteresis_frames, settings.min_interval_ms)
        self.seq = 0
        self._announced: set[str] = set()
        self._on_close = on_close
        self._lock = threading.Lock()
        self._closed = False
        if self.discovery is not None:
            link.add_state(*self.discovery.detected())
        self._publish_counts(None)  # a state from the start: nothing counted yet

    def on_frame(self, result: FrameResult) -> None:
        with self._lock:
            if self._closed:
                return
            events = self.tracker.observe(
                result.predictions, result.frame_id, result.timestamp, result.source_id
            )
            self._emit(events, result.timestamp)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            events = self.tracker.finish(datetime.now(timezone.utc))
            self._emit(events, events[0].timestamp if events else None)
        if self._on_close is not None:
            self._on_close(self)

    def _emit(self, events: list[ClassEvent], timestamp: datetime | None) -> None:
        for event in events:
            if self.discovery is not None and event.class_name not in self._announced:
                self._announced.add(event.class_name)
                self.link.add_state(*self.discovery.class_count(event.class_name))
            self.seq += 1
            self.link.publish(
                Outgoing(
                    self.topics.events,
                    event_payload(event, self.pipeline_id, self.seq),
                    qos=self.settings.qos,
                    event=True,
                )
            )
        if events:
            self._publish_counts(timestamp)

    def _publish_counts(self, timestamp: datetime | None) -> None:
        payload = counts_payload(
            self.pipeline_id, self.tracker.counts(), self.tracker.source_counts(), timestamp
        )
        self.link.publish(Outgoing(self.topics.counts, payload, retain=True, qos=self.settings.qos))
