"""Per-frame metric points and their InfluxDB line-protocol form."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache

FieldValue = float | int | str | bool

DEFAULT_MEASUREMENT = "coral_frame"

# Names of the tags and core fields; extra fields may not reuse them.
RESERVED_NAMES = frozenset(
    {
        "time",
        "pipeline_id",
        "source_id",
        "frame_id",
        "end_to_end_ms",
        "latency_ms",
        "fps",
        "detections",
    }
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND = timedelta(microseconds=1)


def _escaper(specials: str) -> Callable[[str], str]:
    """A function escaping ``specials`` (and newlines) with backslashes, line-protocol style.

    A backslash is literal in line protocol unless it precedes a special character; only
    those backslashes are doubled, so ``C:\\cam`` stays as it is everywhere. Trailing
    backslashes are removed: InfluxDB 1.x/2.x would read them as escaping the separator.
    """
    table = str.maketrans({char: "\\" + char for char in specials} | {"\n": "\\n"})
    ambiguous = re.compile(r"\\(?=[" + re.escape(specials) + r"\n])")

    def escape(text: str) -> str:
        if "\\" in text:
            text = ambiguous.sub(r"\\\\", text.rstrip("\\"))
        return text.translate(table)

    return escape


escape_measurement = _escaper(", ")
escape_key = _escaper(",= ")  # tag keys, tag values and field keys
_STRING_FIELD_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


def escape_string_field(text: str) -> str:
    """A string field value, quoted and escaped (``"`` and ``\\``); newlines stay literal."""
    return '"' + text.translate(_STRING_FIELD_ESCAPES) + '"'


def datetime_to_ns(moment: datetime) -> int:
    """Nanoseconds since the Unix epoch of a timezone-aware datetime (exact integer math)."""
    return (moment - _EPOCH) // _MICROSECOND * 1000


@lru_cache(maxsize=4096)
def _series_key(measurement: str, pipeline_id: str, source_id: str | int) -> str:
    """``measurement,pipeline_id=..,source_id=..`` (tags sorted; empty tag values omitted)."""
    key = escape_measurement(measurement)
    for tag, value in (
        ("pipeline_id", escape_key(pipeline_id)),
        ("source_id", escape_key(str(source_id))),
    ):
        if value:
            key += f",{tag}={value}"
    return key


_cached_escape_key = lru_cache(maxsize=4096)(escape_key)


def _float_field(prefix: str, value: float | None) -> str:
    """``prefix`` + value, or "" for None and NaN/inf, which line protocol cannot carry."""
    return f"{prefix}{value}" if value is not None and math.isfinite(value) else ""


def _extra_fields(fields: dict[str, FieldValue]) -> str:
    """The extra fields as ``,key=value`` pairs (non-finite floats are left out)."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = f"{value}i"
        elif isinstance(value, float):
            if not math.isfinite(value):
                continue
            text = f"{value}"
        else:
            text = escape_string_field(value)
        parts.append(f",{_cached_escape_key(key)}={text}")
    return "".join(parts)


def _checked_fields(fields: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """A private copy of ``fields``; TypeError/ValueError on a bad key or value type."""
    checked: dict[str, FieldValue] = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not key.rstrip("\\"):
            raise ValueError(f"metric field names must be non-empty strings, got {key!r}")
        if key in RESERVED_NAMES:
            raise ValueError(f"metric field name {key!r} is reserved")
        if not isinstance(value, int | float | str):
            raise TypeError(
                f"metric field {key!r} must be float, int, str or bool, got "
                f"{type(value).__name__} (convert numpy scalars with .item())"
            )
        checked[key] = value
    return checked


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """Metrics of one processed video frame.

    ``timestamp`` is the frame's timestamp and must be timezone-aware (UTC preferred).
    ``end_to_end_ms`` runs from the frame's capture to its result; ``latency_ms`` is the model's
    time for the frame (pre-processing, forward pass, decoding: the prediction's ``time``), None
    when the prediction carries none. ``fields`` holds extra configurable fields; it is copied and
    validated on creation.
    """

    pipeline_id: str
    source_id: str | int
    frame_id: int
    timestamp: datetime
    end_to_end_ms: float
    fps: float
    detections: int
    fields: dict[str, FieldValue] = field(default_factory=dict)
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        if self.timestamp.utcoffset() is None:
            raise ValueError("MetricPoint.timestamp must be timezone-aware (e.g. UTC)")
        if self.fields:
            object.__setattr__(self, "fields", _checked_fields(self.fields))

    @property
    def timestamp_ns(self) -> int:
        """The frame timestamp in nanoseconds since the Unix epoch."""
        return datetime_to_ns(self.timestamp)

    def to_line_protocol(self, measurement: str = DEFAULT_MEASUREMENT) -> str:
        """One InfluxDB line-protocol line (no trailing newline), timestamp in ns.

        Tags: pipeline_id, source_id (omitted when empty). Fields: frame_id (int),
        end_to_end_ms, latency_ms, fps (float; omitted when None, NaN or infinite), detections
        (int), extras.
        """
        extras = _extra_fields(self.fields) if self.fields else ""
        return (
            f"{_series_key(measurement, self.pipeline_id, self.source_id)} "
            f"frame_id={self.frame_id}i"
            f"{_float_field(',end_to_end_ms=', self.end_to_end_ms)}"
            f"{_float_field(',latency_ms=', self.latency_ms)}"
            f"{_float_field(',fps=', self.fps)}"
            f",detections={self.detections}i{extras} {datetime_to_ns(self.timestamp)}"
        )
