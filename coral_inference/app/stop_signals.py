"""SIGTERM and SIGHUP stop a job the way Ctrl-C does (``systemctl stop``, ``docker stop``).

Inside :func:`stop_on_signals` the first SIGTERM/SIGHUP raises :class:`StopRequested` in the main
thread (where ``pipeline.join()`` waits), so the job stops its pipeline, closes its files and
still prints its summary. Once the job is closing its outputs it calls
:meth:`StopSignals.disarm`: a signal then is only remembered, so that nothing interrupts the
flushing; so are signals after the first. SIGINT keeps raising ``KeyboardInterrupt``. Previous
handlers are restored on exit.
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


class StopSignals:
    """The handler state: armed (raise) or disarmed (remember), and what was received."""

    def __init__(self) -> None:
        self.armed = True
        self.received: int | None = None

    def disarm(self) -> None:
        """From now on only remember a stop signal (the job is already finishing)."""
        self.armed = False

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        first = self.received is None
        if first:
            self.received = signum
        if first and self.armed:
            raise StopRequested(signum)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopSignals]:
    """Turn SIGTERM/SIGHUP into :class:`StopRequested` while inside (main thread only)."""
    signals = StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return
    previous = {sig: signal.signal(sig, signals.handle) for sig in STOP_SIGNALS}
    try:
        yield signals
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def signal_number(stop: BaseException) -> int:
    """The signal behind a ``KeyboardInterrupt`` (SIGINT) or a :class:`StopRequested`."""
    return stop.signum if isinstance(stop, StopRequested) else int(signal.SIGINT)
