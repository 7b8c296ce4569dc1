"""One compiled OpenVINO model behind the shared session protocol, with a pool of infer
requests so that several frames can be in flight at once."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class OvSession:
    """A compiled model and up to ``max_in_flight`` infer requests.

    :meth:`run` is thread-safe: each call borrows an idle request (creating one while fewer than
    ``max_in_flight`` exist, else waiting for one), so :class:`~coral_inference.models.runner.
    ModelRunner.predict_batch` may run ``max_in_flight`` frames at once.

    Args:
        compiled: An ``openvino.CompiledModel``.
        max_in_flight: How many infer requests at most (at least 1).
        weights: The file it was compiled from (for messages).
    """

    def __init__(self, compiled: Any, max_in_flight: int, weights: str = "") -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
        self._compiled = compiled
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._created = 0
        self._lock = threading.Lock()
        self.max_in_flight = max_in_flight
        self.weights = weights
        first = compiled.inputs[0]
        self.input_name: str = first.get_any_name()
        self.input_shape: list[Any] = [str(dim) for dim in first.get_partial_shape()]
        self.output_count = len(compiled.outputs)
        self.devices: list[str] = list(compiled.get_property("EXECUTION_DEVICES"))
        #: Whether OpenVINO loaded the compiled model from ``cache_dir`` instead of compiling.
        self.loaded_from_cache = bool(_property(compiled, "LOADED_FROM_CACHE", False))
        #: Seconds ``compile_model`` took (set by the backend that compiled it).
        self.compile_seconds = 0.0
        self._idle.put(self._new_request())

    def _new_request(self) -> Any:
        self._created += 1
        return self._compiled.create_infer_request()

    def _borrow(self) -> Any:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._created < self.max_in_flight:
                return self._new_request()
        return self._idle.get()

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Every output of the model for ``tensor`` (batch first), as numpy arrays the caller
        owns."""
        if self._compiled is None:
            raise RuntimeError(f"OpenVINO session for {self.weights} is closed")
        request = self._borrow()
        try:
            # share_inputs: the frame's tensor is read in place (no copy); outputs are copied
            # out of the request, which the next frame reuses.
            results = request.infer({0: tensor}, share_inputs=True)
            return list(results.to_tuple())
        finally:
            self._idle.put(request)

    def close(self) -> None:
        """Drop the requests and the compiled model (OpenVINO frees them with the objects)."""
        self._compiled = None
        while True:
            try:
                self._idle.get_nowait()
            except queue.Empty:
                break


def _property(compiled: Any, name: str, default: Any) -> Any:
    try:
        return compiled.get_property(name)
    except RuntimeError:  # a device or an older OpenVINO without it
        return default
