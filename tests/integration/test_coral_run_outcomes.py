"""``coral run`` when things go wrong: exit codes, signals, lost data, honest time, bad paths.

Real inference, onnxruntime, files, SQLite, signals sent to a real ``coral run`` child process.
"""

import json
import os
import signal
import sqlite3
import time
from datetime import datetime, timedelta, timezone

import pytest
from face_video import make_face_video
from test_coral_run import (
    ONLY,
    assert_frames_recorded_or_counted,
    count_frames,
    run_args,
    spawn_coral,
)

from coral_inference.testing.influxdb import free_port

pytestmark = pytest.mark.integration
SOURCE_FAILED, OUTPUT_LOST_DATA, CANNOT_START = 3, 4, 1


def run_json(coral, *args, env=None, timeout=180):
    """``coral run ... --json``: (exit code, the one JSON object on stdout, stderr)."""
    result = coral(
        *args, "--json", env={"CORAL_PLUGINS__ONLY": ONLY, **(env or {})}, timeout=timeout
    )
    return result.returncode, json.loads(result.stdout), result.stderr


def wait_for_lines(path, count, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path} never reached {count} lines")


@pytest.mark.parametrize("scheme", ["rtsp", "http"])
def test_unreachable_stream_fails_with_the_reason_and_only_json_on_stdout(
    coral, tmp_path, sample_package, scheme
):
    url = f"{scheme}://127.0.0.1:{free_port()}/stream"
    code, summary, stderr = run_json(
        coral, *run_args(sample_package, url, tmp_path / "out"), timeout=120
    )
    assert code == SOURCE_FAILED, stderr
    assert summary["exit_code"] == SOURCE_FAILED and summary["frames"] == 0
    assert "Cannot connect to video source" in summary["source_error"]


def test_file_frames_are_stamped_from_the_run_start_and_runs_never_collide(
    coral, tmp_path, sample_package
):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=40)
    an_hour_ago = time.time() - 3600
    os.utime(video, (an_hour_ago, an_hour_ago))  # inference stamps file frames from this
    out = tmp_path / "out"
    runs = []
    for n in range(2):
        predictions = tmp_path / f"p{n}.jsonl"
        started = datetime.now(timezone.utc)
        code, summary, stderr = run_json(
            coral, *run_args(sample_package, video, out, "--save-predictions", str(predictions))
        )
        assert code == 0, stderr
        stamps = [
            datetime.fromisoformat(json.loads(line)["timestamp"])
            for line in predictions.read_text().splitlines()
        ]
        assert len(stamps) == 40
        # from this run's start (not the file's hour-old mtime); a loaded machine took 77 s
        # to start inference 1.x and read the first frame
        assert started - timedelta(seconds=1) <= stamps[0] <= started + timedelta(seconds=600)
        steps = {
            round((b - a).total_seconds(), 3) for a, b in zip(stamps, stamps[1:], strict=False)
        }
        assert steps == {round(1 / 20, 3)}  # the frame's position in the file (20 fps)
        # capture -> result on the monotonic clock: seconds at most (frames wait in inference's
        # decode buffer, longer on a loaded machine), not the file's hour of age
        assert 0 < summary["end_to_end_ms"]["p95"] < 60_000, summary["end_to_end_ms"]
        runs.append((set(stamps), summary["recordings"]))
    assert not runs[0][0] & runs[1][0]
    assert not set(runs[0][1]) & set(runs[1][1])  # recording names unique per run
    with sqlite3.connect(out / "metrics.db") as db:
        rows, distinct = db.execute(
            "SELECT COUNT(*), COUNT(DISTINCT timestamp_ns) FROM frames"
        ).fetchone()
        latest = db.execute("SELECT MAX(end_to_end_ms) FROM frames").fetchone()[0]
    assert rows == distinct == 80
    # capture to result, not from the file's stamps (those would be hours); loose: a loaded
    # machine keeps frames in the decode buffer for seconds (6 s seen)
    assert latest < 60_000


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_stop_signals_stop_like_ctrl_c(tmp_path, sample_package, stop, code):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=600)
    predictions = tmp_path / "p.jsonl"
    out = tmp_path / "out"
    process = spawn_coral(
        *run_args(sample_package, video, out, "--json", "--save-predictions", str(predictions))
    )
    wait_for_lines(predictions, 20, process)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == code, stderr
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["signal"] == stop.name
    assert summary["exit_code"] == code and 20 <= summary["frames"] < 600
    assert predictions.read_text().count("\n") == summary["frames"]
    assert_frames_recorded_or_counted(summary)
    assert not list(out.rglob("*.partial.mp4"))
    assert summary["metrics"]["written"] == summary["frames"]


def test_segments_left_by_a_crash_are_recovered_or_moved_aside(tmp_path, sample_package, coral):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=600)
    predictions = tmp_path / "p.jsonl"
    out = tmp_path / "out"
    process = spawn_coral(
        *run_args(sample_package, video, out, "--save-predictions", str(predictions))
    )
    wait_for_lines(predictions, 80, process)  # > 2 s of video: at least one whole fragment
    process.kill()  # a crash: nothing is closed
    process.communicate(timeout=30)
    (partial,) = out.rglob("*.partial.mp4")
    garbage = partial.with_name("20200101T000000Z_000001.partial.mp4")
    garbage.write_bytes(b"\0" * 4096)

    small = tmp_path / "small.mp4"
    make_face_video(small, (320, 240), frames=5)
    code, summary, stderr = run_json(coral, *run_args(sample_package, small, out))
    assert code == 0, stderr
    recovered = partial.with_name(partial.name.replace(".partial", ""))
    damaged = garbage.with_name("20200101T000000Z_000001.damaged.mp4")
    assert sorted(summary["recovered"]) == sorted(
        [
            f"moved aside {garbage} -> {damaged} (no decodable frame)",
            f"recovered {partial} -> {recovered} ({count_frames(recovered)} frames)",
        ]
    )
    assert count_frames(recovered) >= 25 and damaged.exists()
    assert not list(out.rglob("*.partial.mp4"))


@pytest.mark.parametrize(
    ("args", "path"),
    [
        (("--output-dir", "/proc/x"), "/proc/x"),
        (("--save-predictions", "/proc/x/p.jsonl"), "/proc/x"),
        (("--set", "services.recording.dir=/proc/x"), "/proc/x"),
        (("--set", "services.metrics.path=/proc/x/m.db"), "/proc/x"),
    ],
)
def test_unwritable_outputs_are_one_line_before_the_model_loads(
    coral, tmp_path, sample_package, args, path
):
    import shutil

    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=5)
    corrupt = tmp_path / "corrupt"  # loading it would fail: the path check must come first
    shutil.copytree(sample_package, corrupt)
    (corrupt / "model.onnx").write_bytes(b"not onnx")
    argv = run_args(corrupt, video, tmp_path / "out")
    if args[0] == "--output-dir":
        argv = argv[:-2]
    result = coral(*argv, *args, "--json", env={"CORAL_PLUGINS__ONLY": ONLY})
    assert result.returncode == CANNOT_START, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot write the ") and path in line, line
    assert json.loads(result.stdout)["exit_code"] == CANNOT_START


def test_a_locked_sqlite_database_is_lost_data_not_success(coral, tmp_path, sample_package):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=20)
    out = tmp_path / "out"
    out.mkdir()
    from coral_inference.services.metrics.stores import SqliteMetricStore

    SqliteMetricStore(out / "metrics.db").close()  # the schema exists
    holder = sqlite3.connect(out / "metrics.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the database for the whole run
    try:
        code, summary, stderr = run_json(coral, *run_args(sample_package, video, out))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == OUTPUT_LOST_DATA, stderr
    assert summary["frames"] == 20 and summary["metrics"]["written"] == 0
    assert "20 points not written" in summary["lost"]["metrics"]
    assert "locked" in summary["lost"]["metrics"]


def influx_args(url: str, *extra: str) -> list[str]:
    return [
        "--set",
        "services.metrics.store=influxdb",
        "--set",
        f"services.metrics.url={url}",
        "--set",
        "services.metrics.database=coral_test",
        *extra,
    ]


@pytest.mark.influxdb
def test_a_fresh_influxdb_gets_every_point(
    coral, tmp_path, sample_package, influxdb_server_factory
):
    from coral_inference.testing.influxdb import count_points

    server = influxdb_server_factory(fresh=True).start()
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=30)
    code, summary, stderr = run_json(
        coral, *run_args(sample_package, video, tmp_path / "out", *influx_args(server.url))
    )
    assert code == 0, stderr
    assert summary["metrics"]["written"] == 30 and summary["lost"] == {}
    assert count_points(server.url, "coral_test", "coral_frame") == 30


@pytest.mark.influxdb
@pytest.mark.parametrize("server_kind", ["no database, creation off", "401"])
def test_points_influxdb_did_not_take_are_an_exit_code_with_the_count(
    coral, tmp_path, sample_package, influxdb_server_factory, server_kind
):
    from coral_inference.testing.influxdb import query

    if server_kind == "401":
        server = influxdb_server_factory(auth_enabled=True).start()
        query(server.url, "CREATE USER admin WITH PASSWORD 'right' WITH ALL PRIVILEGES")
        extra, reason = (), "HTTP 401"
    else:
        server = influxdb_server_factory(fresh=True).start()
        extra, reason = ("--set", "services.metrics.create_database=false"), "database not found"
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=30)
    code, summary, stderr = run_json(
        coral, *run_args(sample_package, video, tmp_path / "out", *influx_args(server.url, *extra))
    )
    assert code == OUTPUT_LOST_DATA, stderr
    assert summary["metrics"]["pending"] == 30 and summary["metrics"]["rejected"] == 0
    assert "30 points not written" in summary["lost"]["metrics"]
    assert reason in summary["lost"]["metrics"]


@pytest.mark.influxdb
def test_influxdb_down_then_up_loses_nothing(tmp_path, sample_package, influxdb_server_factory):
    from coral_inference.testing.influxdb import count_points

    server = influxdb_server_factory(port=free_port())  # not listening yet
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=200)
    predictions = tmp_path / "p.jsonl"
    process = spawn_coral(
        *run_args(
            sample_package,
            video,
            tmp_path / "out",
            "--json",
            "--save-predictions",
            str(predictions),
            *influx_args(server.url),
        )
    )
    wait_for_lines(predictions, 60, process)  # > 1 s of points while nothing listens
    server.start()
    stdout, stderr = process.communicate(timeout=120)
    summary = json.loads(stdout)
    assert process.returncode == 0, stderr
    assert "Connection refused" in summary["metrics"]["last_error"]  # it was down
    assert summary["metrics"]["written"] == summary["frames"] == 200
    assert count_points(server.url, "coral_test", "coral_frame") == 200
