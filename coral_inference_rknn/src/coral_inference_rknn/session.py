"""RKNN sessions: ``RKNNLite`` contexts with every failure turned into an error, and a pool.

``rknnlite`` never raises: a failed ``load_rknn`` / ``init_runtime`` returns ``-1`` and a failed
``inference`` returns ``None``, each with a log line of its own. :class:`RknnContext` turns each
of those into an :class:`RknnError` naming the call, the model file and the SoC, and releases
the context whatever happens. :class:`RknnPool` holds one context per NPU core (or as
configured): ``run`` borrows an idle context, so up to ``len(pool)`` callers run at once on
different cores, and callers beyond that wait. ``close`` and ``shrink`` release contexts once
they are idle again, so a context is never released under a running inference.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from coral_inference.runtime.backends import BackendError

from .options import CORE_MASK_NAMES

log = logging.getLogger(__name__)

#: Makes one ``RKNNLite``-like object: ``rknnlite.api.RKNNLite`` on a board, a stand-in in tests.
RuntimeFactory = Callable[[], Any]

_HINTS = {
    "load_rknn": "is it a complete .rknn file exported by rknn-toolkit2 (coral rknn convert)?",
    "init_runtime": (
        "check that librknnrt.so is at least the rknn-toolkit2 version that built the model, "
        "that the rknpu driver is loaded and the requested core exists; rknnlite logged why"
    ),
    "inference": (
        "the input must match the model (raw RGB uint8 NHWC of the converted size); "
        "rknnlite logged why"
    ),
}


class RknnError(BackendError):
    """An ``RKNNLite`` call failed; the message names the call, the model and the SoC."""


def rknnlite_factory() -> RuntimeFactory:
    """``RKNNLite(verbose=False)``, imported on first use (the board runtime)."""
    try:
        from rknnlite.api import RKNNLite
    except ImportError as exc:
        raise RknnError(
            f"cannot import rknnlite ({exc}); pip install rknn-toolkit-lite2 on the board"
        ) from None
    return lambda: RKNNLite(verbose=False)


class RknnContext:
    """One loaded ``RKNNLite`` runtime pinned to ``core_mask``."""

    def __init__(self, factory: RuntimeFactory, model: Path, soc: str, core_mask: int) -> None:
        self.model = model
        self.soc = soc
        self.core_mask = core_mask
        self._rknn: Any = factory()
        try:
            self._check(self._rknn.load_rknn(str(model)), "load_rknn", f"load_rknn({model.name!r})")
            self._check(
                self._rknn.init_runtime(core_mask=core_mask),
                "init_runtime",
                f"init_runtime(core_mask={CORE_MASK_NAMES.get(core_mask, core_mask)})",
            )
        except BaseException:
            self.release()
            raise

    def _fail(self, call: str, shown: str, result: object) -> RknnError:
        return RknnError(
            f"RKNNLite.{shown} returned {result!r} for {self.model} on {self.soc}: {_HINTS[call]}"
        )

    def _check(self, result: object, call: str, shown: str) -> None:
        if result != 0:
            raise self._fail(call, shown, result)

    def infer(self, tensor: np.ndarray, data_format: str) -> list[np.ndarray]:
        """Every output of the model for ``tensor``, as numpy arrays."""
        if self._rknn is None:
            raise RknnError(f"{self.model} on {self.soc}: the RKNN context was released")
        outputs = self._rknn.inference(inputs=[tensor], data_format=data_format)
        if outputs is None:
            raise self._fail(
                "inference",
                f"inference(inputs=[{tensor.dtype} {list(tensor.shape)}], "
                f"data_format={data_format!r})",
                None,
            )
        return [np.asarray(output) for output in outputs]

    def release(self) -> None:
        """Release the runtime (idempotent; a failing ``release`` is logged, not raised)."""
        rknn, self._rknn = self._rknn, None
        if rknn is None:
            return
        try:
            rknn.release()
        except Exception:  # noqa: BLE001 - releasing must never mask the error being handled
            log.exception("RKNNLite.release() failed for %s", self.model)


class RknnPool:
    """A pool of :class:`RknnContext` behind the shared ``InferenceSession`` protocol.

    ``run`` is thread-safe; ``max_in_flight`` tells callers how many frames they may run at once
    (the pool size, or 1 when pipelining is off).
    """

    input_name = "input"

    def __init__(
        self,
        factory: RuntimeFactory,
        model: Path,
        soc: str,
        core_masks: Sequence[int],
        *,
        data_format: str = "nhwc",
        pipeline: bool = True,
        release_timeout: float = 30.0,
    ) -> None:
        if not core_masks:
            raise ValueError("an RKNN pool needs at least one context")
        self.model = model
        self.soc = soc
        self.data_format = data_format
        self.release_timeout = release_timeout
        self._contexts: list[RknnContext] = []
        self._idle: queue.Queue[RknnContext] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        try:
            for mask in core_masks:
                context = RknnContext(factory, model, soc, mask)
                self._contexts.append(context)
                self._idle.put(context)
        except BaseException:
            for context in self._contexts:
                context.release()
            raise
        self.max_in_flight = len(self._contexts) if pipeline else 1
        log.info(
            "rknn pool for %s on %s: %d context(s), cores %s",
            model.name,
            soc,
            len(self._contexts),
            ", ".join(CORE_MASK_NAMES.get(c.core_mask, str(c.core_mask)) for c in self._contexts),
        )

    def __len__(self) -> int:
        return len(self._contexts)

    @property
    def closed(self) -> bool:
        return self._closed

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        if self._closed:
            raise RknnError(f"{self.model} on {self.soc}: the session is closed")
        context = self._idle.get()
        try:
            return context.infer(tensor, self.data_format)
        finally:
            self._idle.put(context)

    def _take_idle(self) -> RknnContext | None:
        try:
            return self._idle.get(timeout=self.release_timeout)
        except queue.Empty:
            return None

    def shrink(self, size: int) -> None:
        """Release contexts (once idle) until ``size`` remain (at least one)."""
        size = max(1, size)
        with self._lock:
            while len(self._contexts) > size:
                context = self._take_idle()
                if context is None:
                    log.warning("rknn pool: no context became idle; not shrinking further")
                    return
                self._contexts.remove(context)
                context.release()
            self.max_in_flight = min(self.max_in_flight, len(self._contexts))

    def close(self) -> None:
        """Release every context: each as soon as its running inference returns."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            remaining = list(self._contexts)
            while remaining:
                context = self._take_idle()
                if context is None:
                    log.warning(
                        "rknn pool: %d context(s) still busy after %.0f s; releasing them anyway",
                        len(remaining),
                        self.release_timeout,
                    )
                    break
                remaining.remove(context)
                context.release()
            for context in remaining:
                context.release()
            self._contexts.clear()
