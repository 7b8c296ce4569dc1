"""Where the preview's frames come from: anything that can say "the newest frame after this
one" (:class:`FrameSource`), such as ``coral serve``'s slot reader or :class:`RingSource`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from coral_inference.services.ring import FrameRing


@dataclass(frozen=True)
class PreviewFrame:
    """One frame to show: its rising sequence number, its pixels (BGR or grey) and the result
    in ``inference``'s serialised shape (``{"predictions": [{"x", "y", "width", ...}]}``)."""

    sequence: int
    image: np.ndarray
    predictions: dict[str, Any] | None


class FrameSource(Protocol):
    """One pipeline's frames, polled by the preview without waiting."""

    def next_frame(self, after: int) -> PreviewFrame | None:
        """The newest frame if its sequence is above ``after``, else None (none yet, or
        nothing new)."""


class RingSource:
    """The frames the ``buffer_sink`` patch keeps in this process for pipeline
    ``pipeline_id`` (``coral run``'s pipeline). The ring may appear late (before the
    pipeline's first frame there is none) or be replaced (the pipeline was built again): the
    sequence numbers given out keep rising across rings."""

    def __init__(self, pipeline_id: str, find_ring: Callable[[str], FrameRing | None]) -> None:
        self.pipeline_id = pipeline_id
        self.find_ring = find_ring
        self._ring: FrameRing | None = None
        self._offset = 0

    def next_frame(self, after: int) -> PreviewFrame | None:
        ring = self.find_ring(self.pipeline_id)
        if ring is None:
            return None
        if ring is not self._ring:
            self._ring, self._offset = ring, after
        entry = ring.latest()
        if entry is None or self._offset + entry.sequence <= after:
            return None
        return PreviewFrame(self._offset + entry.sequence, entry.frame.image, entry.predictions)
