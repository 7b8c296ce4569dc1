"""The ``register_frame_sinks`` hook end to end: ``coral run --demo`` on real inference feeds
the installed test plugins (``tests/plugins/frame_sink_probe``) every frame, off the inference
thread; a sink slower than the pipeline drops and counts, a raising one is isolated and
reported."""

import json

import pytest

pytestmark = pytest.mark.integration

#: Only what the runs need: the sample model, a recorder to show the pipeline kept every frame,
#: the frame-sink patch and the two test plugins.
ONLY = "[onnx,local_models,video_sink,frame_sinks,frame_sink_probe,frame_sink_raiser]"


def run_json(coral, tmp_path, *extra: str) -> tuple[dict, str]:
    result = coral(
        "run",
        "--demo",
        "--json",
        "--output-dir",
        str(tmp_path / "out"),
        "--set",
        f"plugins.only={ONLY}",
        *extra,
        timeout=300,
    )
    assert result.stdout, result.stderr
    return json.loads(result.stdout), result.stderr


def test_a_plugin_sink_receives_every_frame_of_coral_run_demo(coral, tmp_path):
    report = tmp_path / "probe.json"
    predictions = tmp_path / "predictions.jsonl"
    summary, stderr = run_json(
        coral,
        tmp_path,
        "--set",
        f"services.frame_sink_probe.path={report}",
        "--set",
        "services.frame_sink_probe.with_image=true",
        "--save-predictions",
        str(predictions),
    )
    assert summary["exit_code"] == 0, stderr
    frames = json.loads(report.read_text())["frames"]
    assert summary["frames"] > 0
    assert len(frames) == summary["frames"]
    assert summary["frame_sinks"] == {
        "frame_sink_probe": {"frames": summary["frames"], "dropped": 0, "failed": 0, "pending": 0}
    }
    assert [f["frame_id"] for f in frames] == list(range(1, summary["frames"] + 1))
    assert {f["pipeline_id"] for f in frames} == {"coral-run"}
    stamps = [f["timestamp"] for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert sum(f["detections"] for f in frames) == summary["detections"]
    # The image on request, at the source's size; boxes in its pixels, as coral run saved them.
    assert {tuple(f["image_shape"]) for f in frames} == {(360, 640, 3)}
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(lines) == len(frames)
    for frame, line in zip(frames, lines, strict=True):
        assert frame["frame_id"] == line["frame_id"]
        saved = [v for d in line["detections"] for v in (d["x1"], d["y1"], d["x2"], d["y2"])]
        mine = [
            v for x, y, w, h in frame["boxes"] for v in (x - w / 2, y - h / 2, x + w / 2, y + h / 2)
        ]
        assert mine == pytest.approx(saved, abs=0.01)
    text = coral(
        "run",
        "--demo",
        "--max-frames",
        "5",
        "--output-dir",
        str(tmp_path / "out"),
        "--set",
        f"plugins.only={ONLY}",
        "--set",
        f"services.frame_sink_probe.path={report}",
        timeout=300,
    )
    assert "frame sink frame_sink_probe: 5 frames, 0 dropped (sink behind), 0 failed" in (
        text.stdout
    ), text.stdout + text.stderr


def test_a_slow_sink_drops_and_counts_and_a_raising_sink_is_isolated(coral, tmp_path):
    report = tmp_path / "probe.json"
    limit, queue = 60, 4
    summary, stderr = run_json(
        coral,
        tmp_path,
        "--max-frames",
        str(limit),
        "--set",
        f"services.frame_sink_probe.path={report}",
        "--set",
        "services.frame_sink_probe.mode=block",
        "--set",
        f"services.frame_sink_probe.queue_size={queue}",
        "--set",
        "services.frame_sink_raiser.enabled=true",
    )
    # The pipeline never waited for either sink: every frame processed and recorded.
    assert summary["frames"] == limit
    assert summary["recording"]["frames_written"] == limit, summary["recording"]
    assert summary["exit_code"] == 0, (summary, stderr)
    # The blocked sink took its first frame, then its queue filled: every later frame dropped.
    assert summary["frame_sinks"]["frame_sink_probe"] == {
        "frames": 1 + queue,
        "dropped": limit - 1 - queue,
        "failed": 0,
        "pending": 0,
    }
    assert len(json.loads(report.read_text())["frames"]) == 1 + queue
    # The raising sink: every frame counted failed, the plugin recorded failed, logged once.
    assert summary["frame_sinks"]["frame_sink_raiser"] == {
        "frames": 0,
        "dropped": 0,
        "failed": limit,
        "pending": 0,
    }
    [problem] = [p for p in summary["problems"] if "'frame_sink_raiser'" in p]
    assert "failed: its frame sink raised RuntimeError: raiser sink refuses frame 1" in problem
    assert stderr.count("RuntimeError: raiser sink refuses frame") == 1, stderr
    assert not any("frame_sink_probe" in p for p in summary["problems"])
