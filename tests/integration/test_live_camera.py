"""``coral run`` on a real live RTSP camera: frames, an outage survived and reported, and a
camera that never comes back.

The camera is GStreamer's RTSP server on 127.0.0.1 (see ``rtsp_camera.py``); stopping it drops
the connection as a camera losing power does. Waits are on conditions (lines written, log
lines), with generous deadlines.
"""

from __future__ import annotations

import json
import time

from test_coral_run import assert_frames_recorded_or_counted, run_args, spawn_coral

OK, SOURCE_FAILED = 0, 3


def wait_until(condition, what: str, process, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(f"coral run exited ({process.returncode}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def lines(path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def finish(process, timeout: float = 180) -> tuple[int, dict, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, json.loads(stdout), stderr


def test_frames_from_a_live_camera_are_recorded(rtsp_camera, tmp_path, sample_package) -> None:
    process = spawn_coral(
        *run_args(sample_package, rtsp_camera.url, tmp_path / "out", "--max-frames", "45"),
        "--json",
    )
    code, summary, stderr = finish(process)
    assert code == OK, stderr
    assert summary["frames"] == 45
    assert summary["source"] == {
        "url": rtsp_camera.url,
        "reconnects": 0,
        "outage_seconds": 0.0,
        "frames_missed_estimate": 0,
        "up": True,
    }
    assert_frames_recorded_or_counted(summary)
    assert summary["end_to_end_ms"]["p50"] >= summary["latency_ms"]["p50"] > 0


def test_an_outage_is_survived_and_reported(rtsp_camera, tmp_path, sample_package) -> None:
    predictions = tmp_path / "p.jsonl"
    process = spawn_coral(
        *run_args(sample_package, rtsp_camera.url, tmp_path / "out", "--max-frames", "120"),
        "--save-predictions",
        str(predictions),
        "--json",
    )
    wait_until(lambda: lines(predictions) >= 30, "30 frames before the outage", process)
    rtsp_camera.stop()
    outage_started = time.monotonic()
    seen = lines(predictions)
    time.sleep(6)  # the outage itself: the camera stays off this long
    assert lines(predictions) - seen <= 15, "frames kept coming while the camera was off"
    rtsp_camera.start()
    code, summary, stderr = finish(process)
    outage = time.monotonic() - outage_started
    assert code == OK, stderr
    assert summary["frames"] == 120 and summary["source_error"] is None
    source = summary["source"]
    assert source["reconnects"] == 1 and source["up"], source
    assert 5 <= source["outage_seconds"] <= outage, source
    # 15 fps for at least 5 s; an estimate, so only its order of magnitude is checked
    assert 30 <= source["frames_missed_estimate"] <= 15 * outage * 2, source
    assert_frames_recorded_or_counted(summary)
    assert "lost: reconnecting" in stderr and "back after" in stderr


def test_a_camera_that_never_comes_back_stops_the_run(
    rtsp_camera, tmp_path, sample_package
) -> None:
    predictions = tmp_path / "p.jsonl"
    process = spawn_coral(
        *run_args(sample_package, rtsp_camera.url, tmp_path / "out"),
        "--set",
        "sources.reconnect_timeout_s=3",
        "--save-predictions",
        str(predictions),
        "--json",
    )
    wait_until(lambda: lines(predictions) >= 20, "20 frames before the camera goes", process)
    rtsp_camera.stop()
    code, summary, stderr = finish(process)
    assert code == SOURCE_FAILED, stderr
    assert "did not come back" in summary["source_error"]
    assert summary["source"]["up"] is False and summary["source"]["outage_seconds"] >= 3
    # every frame received before the camera went is recorded (or counted as lost)
    assert summary["frames"] == lines(predictions) >= 20
    assert_frames_recorded_or_counted(summary)


def test_a_wrong_stream_path_is_named(rtsp_camera, tmp_path, sample_package) -> None:
    wrong = rtsp_camera.url.replace("/camera", "/wrong")
    process = spawn_coral(*run_args(sample_package, wrong, tmp_path / "out"), "--json")
    code, summary, stderr = finish(process)
    assert code == SOURCE_FAILED, stderr
    assert summary["source_error"].startswith(
        "the camera has no stream at /wrong (RTSP 404 Not Found): check the stream path"
    )
    assert summary["source"]["up"] is False and summary["frames"] == 0
