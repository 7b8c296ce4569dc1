"""The ``mqtt`` plugin (entry point group ``coral_inference.patches``): its hooks.

``services.mqtt.enabled: true`` registers a frame sink publishing each pipeline's detection
events and counts; the connection opens when the first pipeline starts and closes
(``offline``) when the runtime stops.
"""

from __future__ import annotations

from typing import Any

from coral_inference import hookimpl
from coral_inference.runtime.stash import StashKey
from coral_inference_mqtt.options import OPTIONS, OPTIONS_PATH, MqttSettings
from coral_inference_mqtt.service import MqttService

#: Where the running service waits for ``runtime_stopping``.
SERVICE = StashKey[MqttService]()

#: Frames the sink may have waiting (its work per frame is small).
SINK_QUEUE_SIZE = 256


@hookimpl
def declare_options(declare: Any) -> None:
    """``services.mqtt``: broker, topics, hysteresis, buffer."""
    declare(OPTIONS_PATH, OPTIONS)


@hookimpl
def register_frame_sinks(register: Any, config: Any) -> None:
    """Register the service as the frame-sink factory when enabled (nothing connects before)."""
    settings = MqttSettings.from_section(config.section(OPTIONS_PATH))
    if settings.enabled:
        register(MqttService(settings), queue_size=SINK_QUEUE_SIZE)


@hookimpl
def runtime_started(context: Any) -> None:
    """Keep the service for ``runtime_stopping``. It connects when a first pipeline starts, so
    commands that only initialise the runtime (``coral init``) never touch the broker."""
    for registration in context.services.frame_sinks.registrations:
        if isinstance(registration.factory, MqttService):
            context.stash[SERVICE] = registration.factory


@hookimpl
def runtime_stopping(context: Any) -> None:
    """Flush, publish ``offline`` and disconnect."""
    service = context.stash.pop(SERVICE, None)
    if service is not None:
        service.close()
