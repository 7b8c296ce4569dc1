"""Outages of live sources, told from ``inference``'s status events.

``inference``'s pipeline reconnects a stream that stops sending on its own: its video source
goes ``RESTARTING`` (and from there ``ERROR`` while each attempt fails) until a connection
delivers again (``VIDEO_CONSUMPTION_STARTED``). :class:`SourceHealth` turns those events into
what a camera owner wants to know: how often the source went away, for how long, and about how
many frames were missed; and it gives up on a source that stays away longer than the
configured timeout (``sources.reconnect_timeout_s``), so a job never waits forever on a
camera that is gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: ``inference``'s status events (the same names on the 0.54 and 1.x lines).
STATE_UPDATE_EVENT = "SOURCE_STATE_UPDATE"
CONSUMPTION_STARTED_EVENT = "VIDEO_CONSUMPTION_STARTED"
FRAME_CAPTURED_EVENT = "FRAME_CAPTURED"
RESTARTING_STATE = "RESTARTING"


@dataclass
class _Source:
    """One source's counters; ``down_since`` is set while it is away."""

    reconnects: int = 0
    outage_seconds: float = 0.0
    frames_missed: float = 0.0
    down_since: float | None = None
    connected: bool = False
    first_capture: float | None = None
    last_capture: float | None = None
    captures: int = 0
    last_rate: float = 0.0

    def frame_rate(self) -> float:
        """Frames per second of the current connection, else of the one before (0 before two
        frames were seen)."""
        if self.first_capture is None or self.last_capture is None or self.captures < 2:
            return self.last_rate
        span = self.last_capture - self.first_capture
        return (self.captures - 1) / span if span > 0 else self.last_rate


class SourceHealth:
    """An ``inference`` status handler counting each source's outages.

    ``gave_up(message)`` is called once, from a timer thread, when a source has sent nothing
    for ``reconnect_timeout`` seconds (``None`` or 0: wait for ever); the caller stops its
    pipeline there. ``changed()`` is called when a source goes away or comes back (to publish
    the state while no frames come).
    """

    def __init__(
        self,
        reconnect_timeout: float | None,
        gave_up: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        changed: Callable[[], None] | None = None,
    ) -> None:
        self.reconnect_timeout = reconnect_timeout or None
        self._gave_up = gave_up
        self.changed = changed  #: settable once the publisher exists
        self._clock = clock
        self._sources: dict[Any, _Source] = {}
        self._timers: dict[Any, threading.Timer] = {}
        self._lock = threading.Lock()
        self.given_up: str | None = None

    def on_status(self, update: Any) -> None:
        event = getattr(update, "event_type", None)
        payload = getattr(update, "payload", None) or {}
        source_id = payload.get("source_id")
        if event == FRAME_CAPTURED_EVENT:
            self._captured(source_id)
        elif event == STATE_UPDATE_EVENT:
            state = payload.get("new_state")
            if getattr(state, "value", state) == RESTARTING_STATE:
                self._went_away(source_id)
        elif event == CONSUMPTION_STARTED_EVENT:
            self._came_back(source_id)

    def summary(self) -> dict[str, Any]:
        """Totals over every source (the ones still away counted up to now); ``up``: every
        source delivered and none is away."""
        with self._lock:
            return self._counters(list(self._sources.values()), self._clock())

    def per_source(self) -> dict[Any, dict[str, Any]]:
        """:meth:`summary`'s counters of each source, by source id."""
        now = self._clock()
        with self._lock:
            return {key: self._counters([s], now) for key, s in self._sources.items()}

    @staticmethod
    def _counters(sources: list[_Source], now: float) -> dict[str, Any]:
        away = [now - s.down_since for s in sources if s.down_since is not None]
        missed = sum(s.frames_missed for s in sources) + sum(
            (now - s.down_since) * s.frame_rate() for s in sources if s.down_since is not None
        )
        return {
            "reconnects": sum(s.reconnects for s in sources),
            "outage_seconds": round(sum(s.outage_seconds for s in sources) + sum(away), 2),
            "frames_missed_estimate": round(missed),
            "up": bool(sources) and all(s.connected and s.down_since is None for s in sources),
        }

    def close(self) -> None:
        """Cancel the give-up timers (the pipeline ended)."""
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()

    def _source(self, source_id: Any) -> _Source:
        return self._sources.setdefault(source_id, _Source())

    def _captured(self, source_id: Any) -> None:
        now = self._clock()
        with self._lock:
            source = self._source(source_id)
            if source.down_since is not None:
                return  # a frame from before the outage, reported late
            if source.first_capture is None:
                source.first_capture = now
            source.last_capture = now
            source.captures += 1

    def _went_away(self, source_id: Any) -> None:
        with self._lock:
            source = self._source(source_id)
            if source.down_since is not None:
                return  # the next failed attempt of the same outage
            source.down_since = self._clock()
            source.last_rate = source.frame_rate()
            source.first_capture = source.last_capture = None
            source.captures = 0
            if self.reconnect_timeout is not None:
                timer = threading.Timer(self.reconnect_timeout, self._give_up, (source_id,))
                timer.daemon = True
                self._timers[source_id] = timer
                timer.start()
        log.warning("source %s lost: reconnecting", source_id)
        if self.changed is not None:
            self.changed()

    def _came_back(self, source_id: Any) -> None:
        now = self._clock()
        with self._lock:
            source = self._source(source_id)
            source.connected = True
            timer = self._timers.pop(source_id, None)
            if source.down_since is None:
                return  # the first connection
            away = now - source.down_since
            source.outage_seconds += away
            source.frames_missed += away * source.frame_rate()
            source.reconnects += 1
            source.down_since = None
        if timer is not None:
            timer.cancel()
        log.warning("source %s back after %.1f s", source_id, away)
        if self.changed is not None:
            self.changed()

    def _give_up(self, source_id: Any) -> None:
        with self._lock:
            if self._sources[source_id].down_since is None or self.given_up is not None:
                return
            self.given_up = (
                f"source {source_id} sent nothing for {self.reconnect_timeout:g} s and did not "
                "come back (sources.reconnect_timeout_s)"
            )
        log.error("%s: stopping", self.given_up)
        if self._gave_up is not None:
            self._gave_up(self.given_up)


def watch_pipeline(pipeline: Any, health: SourceHealth) -> None:
    """Feed ``health`` the status events of an ``inference`` pipeline (the handler list it
    shares with its video sources; a pipeline without one is left alone)."""
    handlers = getattr(pipeline, "_status_update_handlers", None)
    if isinstance(handlers, list):
        handlers.append(health.on_status)
