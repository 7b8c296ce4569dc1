"""The process's MQTT service: the frame-sink factory, owner of the broker connection."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from coral_inference_mqtt.link import LinkStats, MqttLink
from coral_inference_mqtt.options import MqttSettings
from coral_inference_mqtt.sink import MqttPipelineSink

if TYPE_CHECKING:
    from coral_inference.services.frame_sinks import SinkPipeline


class MqttService:
    """Registered as the frame-sink factory: ``service(pipeline)`` opens a pipeline's sink.

    One connection for every pipeline of the runtime; :meth:`close` (``runtime_stopping``)
    ends the pipelines still open, flushes, publishes ``offline`` and disconnects.
    """

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.link = MqttLink(settings, settings.password())
        self._open: list[MqttPipelineSink] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Connect (in the background); safe to call again."""
        self.link.start()

    def __call__(self, pipeline: SinkPipeline) -> MqttPipelineSink:
        self.start()
        sink = MqttPipelineSink(pipeline.pipeline_id, self.settings, self.link, self._forget)
        with self._lock:
            self._open.append(sink)
        return sink

    def _forget(self, sink: MqttPipelineSink) -> None:
        with self._lock:
            if sink in self._open:
                self._open.remove(sink)

    def close(self) -> LinkStats:
        """End what is open, flush up to ``flush_timeout_s``, go ``offline``, disconnect."""
        with self._lock:
            still_open = list(self._open)
        for sink in still_open:
            sink.close()
        return self.link.close(self.settings.flush_timeout_s)
