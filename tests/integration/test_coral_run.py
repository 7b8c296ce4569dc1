"""``coral run`` end to end on real inference, onnxruntime, files and SQLite."""

import json
import shutil
import sqlite3
from pathlib import Path
from unittest.mock import ANY

import numpy as np
import pytest
from face_video import iou, make_face_video

from coral_inference.services.recording.track import read_track, track_path

pytestmark = pytest.mark.integration
ONLY = "onnx,local_models,buffer_sink,video_sink,metric_sink"


def run_args(package, video, out, *extra: str) -> list[str]:
    """``coral run`` arguments for a package, a video and an output directory."""
    return [
        "run",
        "--model",
        str(package),
        "--source",
        str(video),
        "--output-dir",
        str(out),
        *extra,
    ]


def spawn_coral(*args):
    """``coral ARGS`` as a background process (for tests that interact with a running job)."""
    import os
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "coral_inference.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CORAL_")},
            "CORAL_PLUGINS__ONLY": ONLY,
        },
    )


def count_frames(path) -> int:
    import cv2

    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def assert_frames_recorded_or_counted(summary: dict) -> None:
    """Every processed frame of a stopped run is in the recordings or counted as not recorded:
    a writer behind on a loaded machine drops frames rather than stall the pipeline, and the
    summary says so under ``lost``."""
    recorded = sum(count_frames(p) for p in summary["recordings"])
    stats = summary["recording"]
    assert recorded == stats["frames_written"], (recorded, stats)
    assert recorded + stats["dropped"] + stats["failed"] == summary["frames"], (recorded, stats)
    assert ("recording" in summary["lost"]) == (recorded < summary["frames"]), summary["lost"]


@pytest.mark.parametrize("size", [(640, 360), (360, 640), (500, 500)])
def test_boxes_match_faces_in_source_pixels(coral, tmp_path, sample_package, size):
    video = tmp_path / "faces.mp4"
    truth = make_face_video(video, size)
    out = tmp_path / "out"
    result = coral(
        *run_args(
            sample_package, video, out, "--json", "--save-predictions", str(tmp_path / "p.jsonl")
        ),
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == len(truth)
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(lines) == len(truth)
    hits, face_frames, false_boxes = 0, 0, 0
    for line in lines:
        expected = truth[line["frame_id"] - 1]
        boxes = [[d["x1"], d["y1"], d["x2"], d["y2"]] for d in line["detections"]]
        assert all(
            set(d) == {"x1", "y1", "x2", "y2", "confidence", "class"} for d in line["detections"]
        )
        if expected:
            face_frames += 1
            hits += any(iou(box, expected[0]) >= 0.5 for box in boxes)
        else:
            false_boxes += len(boxes)
    assert hits >= 0.95 * face_frames, (hits, face_frames)
    assert false_boxes <= 1

    # The recording decodes and holds every processed frame; one metric row per frame.
    assert len(summary["recordings"]) >= 1
    assert sum(count_frames(p) for p in summary["recordings"]) == summary["frames"]
    assert summary["recording"] == {
        "frames_written": summary["frames"],
        "dropped": 0,
        "failed": 0,
        "pending": 0,
        "discarded": 0,
    }
    assert summary["metrics"]["written"] == summary["frames"]

    # Beside each segment its detections track: one line per frame, the boxes of the saved
    # predictions (source pixels) at the frame's time in the video.
    track = [
        row for segment in summary["recordings"] for row in read_track(track_path(Path(segment)))
    ]
    assert [row["frame_id"] for row in track] == [line["frame_id"] for line in lines]
    for row, line in zip(track, lines, strict=True):
        saved = [[d["x1"], d["y1"], d["x2"], d["y2"]] for d in line["detections"]]
        tracked = [d["xyxy"] for d in row["detections"]]
        assert np.allclose(tracked, saved, atol=0.06) if saved else tracked == [], (row, line)
    with sqlite3.connect(out / "metrics.db") as db:
        rows = db.execute("SELECT COUNT(*), COUNT(DISTINCT frame_id) FROM frames").fetchone()
    assert rows == (summary["frames"], summary["frames"])
    assert summary["latency_ms"]["p50"] > 0 and summary["fps"] > 0
    # each frame's model time is part of its capture-to-result time, so each quantile is too
    for q in ("p50", "p95"):
        assert summary["latency_ms"][q] <= summary["end_to_end_ms"][q], summary


def test_several_sources_run_in_one_pipeline_each_recorded_on_its_own(
    coral, tmp_path, sample_package
):
    """Two cameras (here two files of different sizes) multiplexed into one pipeline: every
    frame of each is counted, recorded in its own folder with its track, and summarised."""
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    truth = {
        0: make_face_video(first, (320, 240), frames=30),
        1: make_face_video(second, (640, 360), frames=45),
    }
    out = tmp_path / "out"
    result = coral(
        *run_args(sample_package, first, out, "--source", str(second), "--json"),
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 75
    assert summary["source"]["url"] == [str(first), str(second)]
    assert [(s["url"], s["frames"], s["up"]) for s in summary["sources"]] == [
        (str(first), 30, True),
        (str(second), 45, True),
    ]
    assert sum(s["detections"] for s in summary["sources"]) == summary["detections"]
    for source_id, frames in truth.items():
        folder = out / "recordings" / "coral-run" / str(source_id)
        segments = sorted(p for p in summary["recordings"] if Path(p).parent == folder)
        assert sum(count_frames(p) for p in segments) == len(frames), (folder, summary)
        track = [row for p in segments for row in read_track(track_path(Path(p)))]
        assert len(track) == len(frames)
        faces = sum(bool(row["detections"]) for row in track)
        assert faces >= 0.9 * sum(bool(boxes) for boxes in frames), (source_id, faces)


def test_max_fps_paces_the_sources(coral, tmp_path, sample_package):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=12)
    result = coral(
        *run_args(sample_package, video, tmp_path / "out", "--json"),
        "--set",
        "sources.max_fps=4",
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 12  # a file is read at that pace, not skipped
    assert summary["fps"] <= 6, summary["fps"]  # unpaced, this machine does 10-30


def test_retain_detections_deletes_footage_without_events_and_that_is_no_loss(
    coral, tmp_path, sample_package
):
    import cv2

    video = tmp_path / "empty.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 20, (320, 240))
    rng = np.random.default_rng(3)
    for _ in range(40):  # texture, no face
        writer.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out"
    result = coral(
        *run_args(sample_package, video, out, "--json"),
        "--set",
        "services.recording.retain=detections",
        "--set",
        "services.recording.segment_seconds=1",
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["detections"] == 0 and summary["frames"] == 40
    assert summary["recordings"] == [] and summary["lost"] == {}
    assert summary["recording"]["discarded"] == 40 and summary["recording"]["frames_written"] == 0
    assert not list((out / "recordings").rglob("*.mp4"))


def test_max_frames_stops_recording_and_metrics_at_the_same_frame(coral, tmp_path, sample_package):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=60)
    out = tmp_path / "out"
    result = coral(
        *run_args(sample_package, video, out, "--json", "--max-frames", "12"),
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 12
    assert sum(count_frames(p) for p in summary["recordings"]) == 12
    with sqlite3.connect(out / "metrics.db") as db:
        assert db.execute("SELECT COUNT(*) FROM frames").fetchone() == (12,)


def test_sinks_off_still_runs(coral, tmp_path, sample_package):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=10)
    result = coral(
        *run_args(
            sample_package,
            video,
            tmp_path / "out",
            "--json",
            "--set",
            "patches.video_sink=false",
            "--set",
            "patches.metric_sink=false",
        ),
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["frames"] == 10 and summary["recordings"] == [] and summary["metrics"] == {}
    assert not (tmp_path / "out" / "recordings").exists()


def test_bad_inputs_are_one_clear_error(coral, tmp_path, sample_package):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=5)
    corrupt = tmp_path / "corrupt"
    shutil.copytree(sample_package, corrupt)
    (corrupt / "model.onnx").write_bytes((sample_package / "model.onnx").read_bytes()[:5000])
    missing_field = tmp_path / "missing"
    shutil.copytree(sample_package, missing_field)
    manifest = json.loads((missing_field / "model.json").read_text())
    del manifest["classes"]
    (missing_field / "model.json").write_text(json.dumps(manifest))
    broken_video = tmp_path / "broken.mp4"
    broken_video.write_bytes(b"not a video at all")
    cannot_start, source_failed = 1, 3
    cases = {
        ("--model", str(corrupt), "--source", str(video)): (
            cannot_start,
            "onnxruntime cannot load this model",
        ),
        ("--model", str(missing_field), "--source", str(video)): (
            cannot_start,
            "model.json: classes:",
        ),
        ("--model", str(sample_package), "--source", str(broken_video)): (
            source_failed,
            "cannot be read as video",
        ),
        ("--model", str(sample_package), "--source", str(tmp_path / "absent.mp4")): (
            source_failed,
            "does not exist",
        ),
        ("--model", "no-such-model", "--source", str(video)): (
            cannot_start,
            "neither a model package path",
        ),
    }
    for args, (code, message) in cases.items():
        result = coral(
            "run",
            *args,
            "--output-dir",
            str(tmp_path / "out"),
            "--json",
            env={"CORAL_PLUGINS__ONLY": ONLY},
        )
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert json.loads(result.stdout) == {"error": ANY, "exit_code": code}


def test_models_inspect(coral, sample_package):
    result = coral("models", "inspect", str(sample_package), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["manifest"]["decoder"]["type"] == "centerface"
    assert data["manifest"]["classes"] == ["face"]


def preview_status(port: int, method: str, path: str, headers: dict[str, str]) -> int:
    """The status of one request to the preview on 127.0.0.1:``port``."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = b"{}" if method == "POST" else None
        json_type = {"Content-Type": "application/json"} if body else {}
        connection.request(method, path, body, {**json_type, **headers})
        return connection.getresponse().status
    finally:
        connection.close()


def test_preview_is_served_while_running(tmp_path, sample_package):
    import time
    import urllib.request

    from coral_inference.testing.influxdb import free_port

    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=200)
    port = free_port()
    process = spawn_coral(
        *run_args(
            sample_package, video, tmp_path / "out", "--json", "--preview", f"127.0.0.1:{port}"
        )
    )
    page = None
    deadline = time.monotonic() + 60
    while page is None and time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                page = response.read().decode()
        except OSError:
            time.sleep(0.2)
    # while it runs: a DNS-rebinding page (foreign Host) and a cross-site offer are refused
    refused = [
        preview_status(port, "GET", "/", {"Host": "evil.example"}),
        preview_status(port, "POST", "/offer", {"Origin": "http://evil.example"}),
    ]
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert page is not None and "RTCPeerConnection" in page
    assert refused == [403, 403]
    assert json.loads(stdout)["frames"] == 200
    # printed as a plain line for the user, not logged as a warning
    assert f"\npreview: http://127.0.0.1:{port}" in "\n" + stderr, stderr
    assert "WARNING" not in stderr, stderr


def test_preview_port_in_use_is_a_clear_error(coral, tmp_path, sample_package):
    import socket

    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=5)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = coral(
            *run_args(sample_package, video, tmp_path / "out", "--preview", f"127.0.0.1:{port}"),
            env={"CORAL_PLUGINS__ONLY": ONLY},
        )
    assert result.returncode == 1 and "--preview 127.0.0.1" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_cleanly_with_summary_and_closed_files(tmp_path, sample_package):
    import signal
    import time

    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=600)
    predictions = tmp_path / "p.jsonl"
    out = tmp_path / "out"
    process = spawn_coral(
        *run_args(sample_package, video, out, "--json", "--save-predictions", str(predictions))
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if predictions.exists() and predictions.read_text().count("\n") >= 20:
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and 20 <= summary["frames"] < 600
    assert "Traceback" not in stderr
    assert predictions.read_text().count("\n") == summary["frames"]
    assert_frames_recorded_or_counted(summary)
    assert summary["metrics"]["written"] == summary["frames"]


def test_models_import_onnx_then_run(coral, tmp_path, sample_package):
    out = tmp_path / "imported"
    made = coral(
        "models",
        "import-onnx",
        str(sample_package / "model.onnx"),
        str(out),
        "--name",
        "faces2",
        "--decoder",
        "centerface",
        "--classes",
        "face",
    )
    assert made.returncode == 0, made.stderr
    shown = json.loads(coral("models", "inspect", str(out), "--json").stdout)
    assert shown["manifest"]["name"] == "faces2" and shown["manifest"]["input"]["size"] is None
    bad = coral(
        "models",
        "import-onnx",
        str(sample_package / "model.onnx"),
        str(tmp_path / "x"),
        "--name",
        "x",
        "--decoder",
        "yolov9",
        "--classes",
        "face",
    )
    assert bad.returncode == 1 and "yolov9" in bad.stderr and "Traceback" not in bad.stderr
