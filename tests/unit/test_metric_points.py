"""MetricPoint validation and its InfluxDB line-protocol form."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from coral_inference.services.metrics.points import (
    MetricPoint,
    datetime_to_ns,
    escape_key,
    escape_measurement,
    escape_string_field,
)

pytestmark = pytest.mark.core

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
T0_NS = 1714979289123456000


def point(**overrides: object) -> MetricPoint:
    values: dict = dict(
        pipeline_id="pipe",
        source_id=0,
        frame_id=7,
        timestamp=T0,
        end_to_end_ms=12.5,
        fps=29.97,
        detections=3,
        latency_ms=4.25,
    )
    values.update(overrides)
    return MetricPoint(**values)


def test_line_protocol_layout() -> None:
    assert point().to_line_protocol() == (
        "coral_frame,pipeline_id=pipe,source_id=0 "
        f"frame_id=7i,end_to_end_ms=12.5,latency_ms=4.25,fps=29.97,detections=3i {T0_NS}"
    )


def test_missing_model_latency_is_left_out() -> None:
    assert " frame_id=7i,end_to_end_ms=12.5,fps=29.97," in point(latency_ms=None).to_line_protocol()


def test_custom_measurement_is_escaped() -> None:
    line = point().to_line_protocol("my frames,v2")
    assert line.startswith(r"my\ frames\,v2,pipeline_id=pipe,")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("cam 1", r"cam\ 1"),
        ("a,b", r"a\,b"),
        ("k=v", r"k\=v"),
        ("rtsp://u:p@h/x?a=1, b", r"rtsp://u:p@h/x?a\=1\,\ b"),
        ("C:\\videos\\cam.mp4", "C:\\videos\\cam.mp4"),  # lone backslashes stay literal
        ("trail\\\\", "trail"),  # InfluxDB 1.x/2.x would read it as escaping the separator
        ("a\\,b", "a\\\\\\,b"),  # backslash before a special character is doubled
        ("two\nlines", "two\\nlines"),
    ],
)
def test_tag_escaping(raw: str, escaped: str) -> None:
    assert escape_key(raw) == escaped
    line = point(pipeline_id=raw, source_id=raw).to_line_protocol()
    assert line.startswith(f"coral_frame,pipeline_id={escaped},source_id={escaped} frame_id=")
    assert "\n" not in line


def test_measurement_escaping_keeps_equals() -> None:
    assert escape_measurement("a=b c,d") == r"a=b\ c\,d"


@pytest.mark.parametrize("empty", ["", "\\"])
def test_empty_tag_values_are_omitted(empty: str) -> None:
    line = point(pipeline_id=empty, source_id=empty).to_line_protocol()
    assert line.startswith("coral_frame frame_id=")


def test_string_field_escaping() -> None:
    assert escape_string_field('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    line = point(fields={"label": 'a "quoted", spaced=value'}).to_line_protocol()
    assert ',label="a \\"quoted\\", spaced=value" ' in line


def test_extra_field_types_and_key_escaping() -> None:
    fields = {"model id": "yolo", "conf,x": 0.25, "ok=1": True, "n": 4, "off": False}
    line = point(fields=fields).to_line_protocol()
    assert line.endswith(r',model\ id="yolo",conf\,x=0.25,ok\=1=true,n=4i,off=false ' + str(T0_NS))


def test_non_finite_floats_are_left_out() -> None:
    line = point(
        end_to_end_ms=float("nan"),
        latency_ms=float("inf"),
        fps=float("inf"),
        fields={"x": -float("inf")},
    )
    assert line.to_line_protocol() == (
        f"coral_frame,pipeline_id=pipe,source_id=0 frame_id=7i,detections=3i {T0_NS}"
    )


def test_numpy_scalars_format_as_plain_numbers() -> None:
    line = point(
        frame_id=np.int64(9),
        end_to_end_ms=np.float64(2.5),
        latency_ms=np.float64(1.5),
        fps=np.float32(30.0),
    )
    expected = " frame_id=9i,end_to_end_ms=2.5,latency_ms=1.5,fps=30.0,detections=3i "
    assert expected in line.to_line_protocol()


def test_timestamp_ns_is_exact_and_timezone_independent() -> None:
    assert point().timestamp_ns == T0_NS
    plus_two = T0.astimezone(timezone(timedelta(hours=2)))
    assert point(timestamp=plus_two).timestamp_ns == T0_NS
    assert datetime_to_ns(datetime(1970, 1, 1, tzinfo=timezone.utc)) == 0


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        point(timestamp=datetime(2024, 1, 1))


@pytest.mark.parametrize(
    "name", ["fps", "frame_id", "pipeline_id", "time", "latency_ms", "end_to_end_ms"]
)
def test_reserved_field_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="reserved"):
        point(fields={name: 1})


def test_unsupported_field_values_are_refused() -> None:
    with pytest.raises(TypeError, match=r"\.item\(\)"):
        point(fields={"n": np.int64(3)})
    with pytest.raises(TypeError):
        point(fields={"xs": [1, 2]})


def test_fields_are_copied() -> None:
    fields: dict = {"a": 1}
    p = point(fields=fields)
    fields["a"] = 2
    assert p.fields == {"a": 1}
