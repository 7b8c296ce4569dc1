"""Names of recorded video segments.

A closed segment is named by the UTC time of its first frame and a sequence number, e.g.
``20261122T193101Z_000001.mp4``. While a segment is being written it carries a ``.partial.mp4``
suffix and is renamed once its container is finalised, so any file matching
:func:`is_closed_segment` is complete and playable.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

_CLOSED_SUFFIX = ".mp4"
_PARTIAL_SUFFIX = ".partial.mp4"
_DAMAGED_SUFFIX = ".damaged.mp4"
_CLOSED_NAME = re.compile(r"^\d{8}T\d{6}Z_\d{6}\.mp4$")
_DAMAGED_NAME = re.compile(r"^\d{8}T\d{6}Z_\d{6}\.damaged\.mp4$")


def segment_filename(start: datetime, sequence: int) -> str:
    """Return the closed-segment file name for a segment starting at ``start`` (tz-aware)."""
    return f"{start.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}_{sequence:06d}{_CLOSED_SUFFIX}"


def partial_path(closed: Path) -> Path:
    """Return the path a segment is written to before it is renamed to ``closed``."""
    return closed.with_name(closed.name.removesuffix(_CLOSED_SUFFIX) + _PARTIAL_SUFFIX)


def is_closed_segment(name: str) -> bool:
    """Tell whether a file name is that of a closed (finalised) segment."""
    return _CLOSED_NAME.match(name) is not None


def is_partial_segment(name: str) -> bool:
    """Tell whether a file name is that of a segment still (or, after a crash, never) closed."""
    return name.endswith(_PARTIAL_SUFFIX)


def closed_path(partial: Path) -> Path:
    """The closed-segment path of a ``.partial.mp4`` path."""
    return partial.with_name(partial.name.removesuffix(_PARTIAL_SUFFIX) + _CLOSED_SUFFIX)


def damaged_path(partial: Path) -> Path:
    """Where an unrecoverable ``.partial.mp4`` is moved aside (kept for inspection)."""
    return partial.with_name(partial.name.removesuffix(_PARTIAL_SUFFIX) + _DAMAGED_SUFFIX)


def is_retained_file(name: str) -> bool:
    """Tell whether retention manages (counts and may delete) a file: closed or damaged."""
    return _CLOSED_NAME.match(name) is not None or _DAMAGED_NAME.match(name) is not None
