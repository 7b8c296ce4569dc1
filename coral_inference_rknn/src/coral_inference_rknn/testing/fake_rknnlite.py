"""``FakeRKNNLite``: a thin stand-in for ``rknnlite.api.RKNNLite``, for tests and benchmarks only.

It follows the documented board API: ``RKNNLite(verbose=False)``, ``load_rknn(path)`` -> 0/-1,
``init_runtime(core_mask=...)`` -> 0/-1, ``inference(inputs=[...], data_format=...)`` -> list of
arrays or ``None``, ``get_sdk_version()``, ``release()``; like the real one it never raises and
logs a line on every failure. What it computes:

* with ``compute="onnx"`` (the default) the outputs come from onnxruntime running the package's
  ONNX twin (``rknn.onnx`` in the manifest next to the ``.rknn``): the raw RGB uint8 NHWC input
  is normalised and laid out as ``rknn.onnx_input`` says, which is what the NPU does with the
  mean/std baked in at conversion;
* with ``compute="zeros"`` it returns zero outputs of ``output_shapes`` (scheduling benchmarks).

Each ``inference`` call also sleeps ``delay_s`` (the simulated NPU time, GIL released as on the
board). :class:`FakeNpu` holds what the instances share: failure injection (``fail`` maps a call
name to how many upcoming calls fail), the call log, concurrency counters per core mask and the
set of live (unreleased) contexts, so tests can check releases.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

NPU_CORE_AUTO, NPU_CORE_0, NPU_CORE_1, NPU_CORE_2 = 0, 1, 2, 4
NPU_CORE_0_1, NPU_CORE_0_1_2 = 3, 7
_VALID_MASKS = {0, 1, 2, 4, 3, 7}
RKNN_MAGIC = b"RKNN"
SDK_VERSION = "rknn-toolkit-lite2 stand-in (coral_inference_rknn.testing.fake_rknnlite)"


@dataclass
class FakeNpu:
    """State shared by the stand-in's instances: one object per simulated board."""

    delay_s: float = 0.0
    compute: str = "onnx"
    output_shapes: Sequence[Sequence[int]] = ((1, 1),)
    cores: int = 3
    fail: Counter = field(default_factory=Counter)
    calls: list[str] = field(default_factory=list)
    live: set[int] = field(default_factory=set)
    busy: Counter = field(default_factory=Counter)
    peak_busy: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def factory(self) -> FakeRKNNLite:
        """Make one ``RKNNLite`` stand-in bound to this NPU (the backend's runtime factory)."""
        return FakeRKNNLite(npu=self)

    def should_fail(self, call: str) -> bool:
        with self.lock:
            self.calls.append(call)
            if self.fail[call] > 0:
                self.fail[call] -= 1
                return True
            return False


class FakeRKNNLite:
    """Stand-in for ``rknnlite.api.RKNNLite`` (same method names, arguments and return values)."""

    NPU_CORE_AUTO = NPU_CORE_AUTO
    NPU_CORE_0 = NPU_CORE_0
    NPU_CORE_1 = NPU_CORE_1
    NPU_CORE_2 = NPU_CORE_2
    NPU_CORE_0_1 = NPU_CORE_0_1
    NPU_CORE_0_1_2 = NPU_CORE_0_1_2

    def __init__(self, verbose: bool = False, npu: FakeNpu | None = None) -> None:
        self.verbose = verbose
        self.npu = npu or FakeNpu()
        self._path: Path | None = None
        self._core_mask: int | None = None
        self._session: Any = None
        self._twin_input: Any = None
        with self.npu.lock:
            self.npu.live.add(id(self))

    def load_rknn(self, path: str) -> int:
        if self.npu.should_fail("load_rknn"):
            log.error("E load_rknn: injected failure for %s", path)
            return -1
        try:
            with open(path, "rb") as file:
                magic = file.read(len(RKNN_MAGIC))
        except OSError as exc:
            log.error("E load_rknn: %s", exc)
            return -1
        if magic != RKNN_MAGIC:
            log.error("E load_rknn: %s is not an RKNN model (bad magic %r)", path, magic)
            return -1
        self._path = Path(path)
        return 0

    def init_runtime(self, core_mask: int = NPU_CORE_AUTO, **_: Any) -> int:
        if self._path is None:
            log.error("E init_runtime: load_rknn first")
            return -1
        if self.npu.should_fail("init_runtime"):
            log.error("E init_runtime: injected failure (core_mask=%s)", core_mask)
            return -1
        if core_mask not in _VALID_MASKS or core_mask >= 1 << self.npu.cores:
            log.error(
                "E init_runtime: invalid core mask %s for %d cores", core_mask, self.npu.cores
            )
            return -1
        if self.npu.compute == "onnx":
            try:
                self._session, self._twin_input = _load_twin(self._path)
            except Exception as exc:  # noqa: BLE001 - the real runtime reports, never raises
                log.error("E init_runtime: %s", exc)
                return -1
        self._core_mask = core_mask
        return 0

    def inference(
        self, inputs: Sequence[np.ndarray], data_format: str | Sequence[str] | None = None, **_: Any
    ) -> list[np.ndarray] | None:
        if self._core_mask is None:
            log.error("E inference: init_runtime first")
            return None
        if self.npu.should_fail("inference"):
            log.error("E inference: injected failure")
            return None
        if not inputs:
            log.error("E inference: no inputs")
            return None
        with self.npu.lock:
            self.npu.busy[self._core_mask] += 1
            self.npu.peak_busy = max(self.npu.peak_busy, sum(self.npu.busy.values()))
        try:
            started = time.perf_counter()
            outputs = self._compute(np.asarray(inputs[0]), data_format)
            left = self.npu.delay_s - (time.perf_counter() - started)
            if left > 0:
                time.sleep(left)
            return outputs
        finally:
            with self.npu.lock:
                self.npu.busy[self._core_mask] -= 1

    def _compute(self, tensor: np.ndarray, data_format: Any) -> list[np.ndarray] | None:
        if self.npu.compute == "zeros":
            return [np.zeros(shape, np.float32) for shape in self.npu.output_shapes]
        layout = (
            data_format[0] if isinstance(data_format, (list, tuple)) else data_format
        ) or "nhwc"
        if tensor.ndim == 3:
            tensor = tensor[None]
        if layout.lower() == "nchw":
            tensor = tensor.transpose(0, 2, 3, 1)
        spec = self._twin_input
        pixels = tensor.astype(np.float32)  # already in the twin's channel order
        pixels = (pixels * spec.scale - np.asarray(spec.mean, np.float32)) / np.asarray(
            spec.std, np.float32
        )
        if spec.layout == "NCHW":
            pixels = pixels.transpose(0, 3, 1, 2)
        feed = np.ascontiguousarray(pixels, np.float32)
        expected = self._session.get_inputs()[0]
        fixed = [d for d in expected.shape if isinstance(d, int)]
        if len(fixed) == 4 and list(feed.shape) != list(expected.shape):
            log.error(
                "E inference: input %s does not match the model's %s", feed.shape, expected.shape
            )
            return None
        return self._session.run(None, {expected.name: feed})

    def get_sdk_version(self) -> str:
        return SDK_VERSION

    def release(self) -> None:
        self._session = None
        self._core_mask = None
        with self.npu.lock:
            self.npu.calls.append("release")
            self.npu.live.discard(id(self))


def _load_twin(rknn_path: Path) -> tuple[Any, Any]:
    """The onnxruntime session and input spec of the ONNX twin named in the manifest."""
    import onnxruntime as ort

    from coral_inference.models.manifest import MANIFEST_FILENAME, ModelManifest

    manifest = ModelManifest.load(rknn_path.parent / MANIFEST_FILENAME)
    spec = manifest.rknn
    if spec is None or spec.onnx is None or spec.onnx_input is None:
        raise ValueError(
            f"{rknn_path}: the stand-in computes outputs from the ONNX twin, but the manifest "
            "names no rknn.onnx / rknn.onnx_input"
        )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(rknn_path.parent / spec.onnx), sess_options=options, providers=["CPUExecutionProvider"]
    )
    return session, spec.onnx_input
