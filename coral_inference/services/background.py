"""Helpers for the services' background threads (recorder, metric writer)."""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

#: How much nicer than the inference threads background work runs (Linux: per thread).
BACKGROUND_NICENESS = 10


def run_in_background_priority() -> None:
    """Make the calling thread (and the threads it starts, e.g. x264's) yield the CPU to
    inference: on a 2-core edge board, encoding and writing then fill idle time instead of
    stalling onnxruntime's thread pool. A no-op where per-thread priorities do not exist."""
    setpriority = getattr(os, "setpriority", None)
    if setpriority is None:
        return
    try:
        thread_id = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread_id)
        setpriority(os.PRIO_PROCESS, thread_id, max(current, BACKGROUND_NICENESS))
    except OSError as exc:  # not permitted, or not a per-thread priority OS
        logger.debug("cannot lower the priority of %s: %s", threading.current_thread().name, exc)
