"""The built-in patches against real inference: effects seen through inference's own objects."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading

import pytest
from face_video import make_face_video

import coral_inference
from coral_inference.runtime import compat
from coral_inference.runtime.schema import builtin_patches

pytestmark = pytest.mark.integration
PIPELINE = "inference.core.interfaces.stream.inference_pipeline:InferencePipeline"
ONLY = ["onnx", *builtin_patches()]


@pytest.fixture(scope="module")
def sample_package(tmp_path_factory):
    from coral_inference.models.sample import build_sample_package

    return build_sample_package(tmp_path_factory.mktemp("pkg") / "centerface").root


@pytest.fixture(autouse=True)
def _shutdown():
    yield
    coral_inference.shutdown()


def config(tmp_path, sample_package, **services):
    data = {
        "platform": "cpu",
        "plugins": {"only": ONLY},
        "models": {"faces": str(sample_package)},
        "services": {
            "recording": {"dir": str(tmp_path / "rec"), "segment_seconds": 1},
            "metrics": {"path": str(tmp_path / "m.db"), "flush_seconds": 0.1},
        },
    }
    for key, value in services.items():
        data["services"][key] = {**data["services"].get(key, {}), **value}
    return data


def snapshot():
    """Every attribute / registry entry the built-in patches may touch, by identity."""
    from inference.core.registries.roboflow import GENERIC_MODELS
    from inference.models.utils import ROBOFLOW_MODEL_TYPES

    pipeline = compat.import_object(PIPELINE)
    return {
        "init": pipeline.__dict__.get("__init__"),
        "join": pipeline.__dict__.get("join"),
        "generic": dict(GENERIC_MODELS),
        "types": dict(ROBOFLOW_MODEL_TYPES),
    }


def run_pipeline(on_prediction=None, video=None, frames=None):
    from inference import InferencePipeline

    seen = []

    def collect(predictions, frame):
        seen.append(frame.frame_id)
        if on_prediction is not None:
            on_prediction(predictions, frame)

    pipeline = InferencePipeline.init(
        model_id="faces", video_reference=str(video), on_prediction=collect
    )
    pipeline.start(use_main_thread=False)
    pipeline.join()
    return seen


def test_init_twice_then_shutdown_leaves_inference_as_it_was(tmp_path, sample_package):
    before = snapshot()
    first = coral_inference.init(config(tmp_path, sample_package))
    patched = snapshot()
    second = coral_inference.init(config(tmp_path, sample_package))
    for name in ("local_models", "buffer_sink", "video_sink", "metric_sink"):
        assert first.patches[name].status == "applied", first.patches[name]
        assert second.patches[name].status == "applied"
        assert second.patches[name].inference_range
    assert snapshot()["init"] is patched["init"]  # not wrapped a second time
    assert "faces" in snapshot()["generic"]
    coral_inference.shutdown()
    after = snapshot()
    assert after["init"] is before["init"] and after["join"] is before["join"]
    assert after["generic"] == before["generic"] and after["types"] == before["types"]
    assert all(after["types"][k] is v for k, v in before["types"].items())


def test_out_of_range_inference_skips_every_builtin_with_reason(
    tmp_path, sample_package, monkeypatch
):
    monkeypatch.setattr(
        compat,
        "installed_inference",
        lambda **_: compat.InstalledInference("inference-cpu", "9.0.0"),
    )
    before = snapshot()
    context = coral_inference.init(config(tmp_path, sample_package))
    for name in ("local_models", "buffer_sink", "video_sink", "metric_sink"):
        record = context.patches[name]
        assert record.status == "skipped" and "installed inference is 9.0.0" in record.reason
    assert snapshot()["init"] is before["init"]


def run_named(name, video, on_prediction=None):
    from coral_inference.patches.tap import pipeline_name

    with pipeline_name(name):
        return run_pipeline(on_prediction=on_prediction, video=video)


def test_pipeline_records_and_writes_metrics(tmp_path, sample_package):
    video = tmp_path / "v.mp4"
    make_face_video(video, (320, 240), frames=30, fps=10)
    context = coral_inference.init(config(tmp_path, sample_package))
    model_ms = {}

    def model_time(predictions, frame):
        model_ms[frame.frame_id] = predictions["time"] * 1000

    seen = run_named("records", video, model_time)
    ring = context.services.rings.get("records")
    assert ring is not None and len(ring) == min(30, context.config.get("services.buffer.size"))
    coral_inference.shutdown()
    files = context.services.recordings.segments("records")
    assert len(files) == 3 and all(str(tmp_path) in str(p) for p in files)  # 30 at 10 fps, 1 s
    with sqlite3.connect(tmp_path / "m.db") as db:
        rows = db.execute(
            "SELECT COUNT(*), MIN(frame_id), MAX(frame_id), SUM(detections) FROM frames"
        ).fetchone()
        times = db.execute("SELECT frame_id, latency_ms, end_to_end_ms FROM frames").fetchall()
    assert rows[:3] == (len(seen), 1, len(seen)) and rows[3] > 0
    assert context.services.metrics.summary()["written"] == len(seen)
    # latency_ms is the model's time per frame, part of the frame's capture-to-result time
    for frame_id, latency, end_to_end in times:
        assert latency == pytest.approx(model_ms[frame_id]), frame_id
        assert 0 < latency <= end_to_end < 60_000, (frame_id, latency, end_to_end)


def test_two_pipelines_keep_separate_rings_recordings_and_counters(tmp_path, sample_package):
    short, long = tmp_path / "short.mp4", tmp_path / "long.mp4"
    make_face_video(short, (320, 240), frames=12, fps=10)
    make_face_video(long, (240, 320), frames=25, fps=10)
    context = coral_inference.init(config(tmp_path, sample_package, buffer={"size": 100}))
    threads = [
        threading.Thread(target=run_named, args=(name, video))
        for name, video in (("cam-a", short), ("cam-b", long))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    rings = context.services.rings
    assert len(rings.get("cam-a")) == 12 and len(rings.get("cam-b")) == 25
    assert rings.get("cam-a").latest().frame.image.shape[:2] == (240, 320)
    assert rings.get("cam-b").latest().frame.image.shape[:2] == (320, 240)
    assert context.services.metrics.submitted("cam-a") == 12
    assert context.services.metrics.submitted("cam-b") == 25
    coral_inference.shutdown()
    a, b = context.services.recordings.stats("cam-a"), context.services.recordings.stats("cam-b")
    assert sum(s.frames_written for s in a) == 12 and sum(s.frames_written for s in b) == 25
    assert all("/cam-a/" in str(p) for p in context.services.recordings.segments("cam-a"))
    assert context.services.metrics.summary()["per_pipeline"] == {"cam-a": 12, "cam-b": 25}


def test_a_second_init_gets_fresh_services_and_closes_the_first(tmp_path, sample_package):
    video = tmp_path / "v.mp4"
    make_face_video(video, (320, 240), frames=8, fps=10)
    first = coral_inference.init(config(tmp_path, sample_package))
    run_named("first", video)
    second = coral_inference.init(config(tmp_path, sample_package))
    assert second.services is not first.services
    assert first.services.metrics.summary()["written"] == 8  # closed: flushed by the new init
    run_named("second", video)
    assert second.services.rings.get("first") is None
    assert len(second.services.rings.get("second")) == 8
    assert first.services.rings.get("second") is None
    coral_inference.shutdown()
    assert second.services.metrics.summary()["per_pipeline"] == {"second": 8}


def test_unwritable_recording_dir_mid_run(tmp_path, sample_package, caplog):
    video = tmp_path / "v.mp4"
    make_face_video(video, (320, 240), frames=40, fps=10)
    coral_inference.init(config(tmp_path, sample_package, recording={"segment_seconds": 1}))
    recording_root = tmp_path / "rec"
    sabotaged = threading.Event()

    def sabotage(_predictions, frame):
        if frame.frame_id == 10 and not sabotaged.is_set():
            shutil.rmtree(recording_root)
            recording_root.write_text("not a directory any more")
            sabotaged.set()

    with caplog.at_level(logging.ERROR, logger="coral_inference"):
        seen = run_pipeline(on_prediction=sabotage, video=video)
    coral_inference.shutdown()
    assert sabotaged.is_set() and len(seen) == 40
    with sqlite3.connect(tmp_path / "m.db") as db:
        assert db.execute("SELECT COUNT(*) FROM frames").fetchone() == (40,)
    recorder_errors = [r for r in caplog.records if r.name.startswith("coral_inference.services")]
    assert len(recorder_errors) == 1, [r.getMessage() for r in recorder_errors]


def test_metrics_to_real_influxdb(tmp_path, sample_package, influxdb_url, influxdb_database):
    from coral_inference.testing.influxdb import count_points

    video = tmp_path / "v.mp4"
    make_face_video(video, (320, 240), frames=20, fps=10)
    coral_inference.init(
        config(
            tmp_path,
            sample_package,
            metrics={"store": "influxdb", "url": influxdb_url, "database": influxdb_database},
        )
    )
    seen = run_pipeline(video=video)
    coral_inference.shutdown()
    assert count_points(influxdb_url, influxdb_database, "coral_frame") == len(seen) == 20
