"""SIGTERM and SIGHUP stop a job the way Ctrl-C does (``systemctl stop``, ``docker stop``).

Inside :func:`stop_on_signals` the first SIGTERM/SIGHUP raises :class:`StopRequested` in the main
thread (where ``pipeline.join()`` waits), so the job stops its pipeline, closes its files and
still prints its summary; further signals during that clean stop are ignored. SIGINT keeps
raising ``KeyboardInterrupt``. Previous handlers are restored on exit.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class StopRequested(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into :class:`StopRequested` while inside (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        if not raised.is_set():
            raised.set()
            raise StopRequested(signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signal_number(stop: BaseException) -> int:
    """The signal behind a ``KeyboardInterrupt`` (SIGINT) or a :class:`StopRequested`."""
    return stop.signum if isinstance(stop, StopRequested) else int(signal.SIGINT)
