"""Topics and JSON payloads: events, retained counts, Home Assistant discovery configs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from coral_inference_mqtt.events import ClassEvent

ONLINE, OFFLINE = "online", "offline"


def topic_level(name: str) -> str:
    """``name`` as one topic level: ``/``, ``+``, ``#`` and NUL become ``_``."""
    cleaned = re.sub(r"[/+#\x00]", "_", name)
    return cleaned or "_"


def object_id(name: str) -> str:
    """``name`` as a Home Assistant object/node id (letters, digits, ``_``, ``-``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name) or "_"


@dataclass(frozen=True)
class Topics:
    """Where one pipeline's messages go."""

    prefix: str
    pipeline_id: str

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    @property
    def events(self) -> str:
        return f"{self.prefix}/{topic_level(self.pipeline_id)}/events"

    @property
    def counts(self) -> str:
        return f"{self.prefix}/{topic_level(self.pipeline_id)}/counts"


def _stamp(timestamp: datetime) -> str:
    return timestamp.isoformat()


def event_payload(event: ClassEvent, pipeline_id: str, seq: int) -> str:
    """The JSON of one event; ``seq`` numbers a pipeline's events from 1 (gaps: lost ones)."""
    body: dict[str, Any] = {
        "event": event.kind,
        "pipeline": pipeline_id,
        "class": event.class_name,
        "count": event.count,
        "previous": event.previous,
        "source_id": event.source_id,
        "frame_id": event.frame_id,
        "timestamp": _stamp(event.timestamp),
        "seq": seq,
    }
    if event.reason is not None:
        body["reason"] = event.reason
    return json.dumps(body, sort_keys=True)


def counts_payload(
    pipeline_id: str,
    counts: dict[str, int],
    sources: dict[str, dict[str, int]],
    timestamp: datetime | None,
) -> str:
    """The retained counts: per class (0 for classes no longer seen), ``total``, per source."""
    return json.dumps(
        {
            "pipeline": pipeline_id,
            "counts": counts,
            "total": sum(counts.values()),
            "sources": sources,
            "timestamp": None if timestamp is None else _stamp(timestamp),
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class Discovery:
    """Home Assistant discovery configs of one pipeline (retained under ``prefix``)."""

    prefix: str
    topics: Topics

    @property
    def node(self) -> str:
        return object_id(f"{self.topics.prefix}_{self.topics.pipeline_id}")

    def _device(self) -> dict[str, Any]:
        return {
            "identifiers": [f"coral_{self.node}"],
            "name": f"coral {self.topics.pipeline_id}",
            "manufacturer": "coral-inference",
            "model": "coral-inference pipeline",
        }

    def _common(self) -> dict[str, Any]:
        return {
            "state_topic": self.topics.counts,
            "availability_topic": self.topics.availability,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": self._device(),
        }

    def detected(self) -> tuple[str, str]:
        """``(topic, payload)``: a binary_sensor, on while anything is counted."""
        config = {
            "name": "something detected",
            "unique_id": f"{self.node}_detected",
            "value_template": "{{ 'ON' if value_json.total > 0 else 'OFF' }}",
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "occupancy",
            **self._common(),
        }
        topic = f"{self.prefix}/binary_sensor/{self.node}/detected/config"
        return topic, json.dumps(config, sort_keys=True)

    def class_count(self, class_name: str) -> tuple[str, str]:
        """``(topic, payload)``: a sensor with the count of one class."""
        key = object_id(class_name)
        config = {
            "name": f"{class_name} count",
            "unique_id": f"{self.node}_{key}_count",
            "value_template": "{{ value_json.counts["
            + json.dumps(class_name)
            + "] | default(0) }}",
            "state_class": "measurement",
            "icon": "mdi:counter",
            **self._common(),
        }
        topic = f"{self.prefix}/sensor/{self.node}/{key}_count/config"
        return topic, json.dumps(config, sort_keys=True)
