"""``plugins_examples/line_counter``: exact counts on a generated video, bounded state.

The video moves the astronaut's face (detected by the sample CenterFace package) back and forth
across two vertical lines along known waypoints, so the number of crossings each way is known;
``roboflow_core/byte_tracker@v3`` gives the tracker ids, as in a real deployment.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
from pathlib import Path

import numpy as np
import pytest

import coral_inference

pytestmark = pytest.mark.integration

SIZE = (480, 270)
#: Face centre x as a fraction of the width, visited in order at SPEED pixels per frame.
WAYPOINTS = (0.1, 0.9, 0.6, 0.9, 0.6, 0.9, 0.1, 0.9)
SPEED = 8.0
LINES = [
    {"name": "middle", "start": [240, 0], "end": [240, 270]},  # x = 0.5
    {"name": "right", "start": [360, 0], "end": [360, 270]},  # x = 0.75
]
#: Left-to-right is "in" for a line drawn top to bottom.
EXPECTED_IN = {"middle": 2, "right": 4}
EXPECTED_OUT = {"middle": 1, "right": 3}


@pytest.fixture(scope="module", autouse=True)
def _installed():
    try:
        metadata.version("coral-example-line-counter")
    except metadata.PackageNotFoundError:
        pytest.skip("pip install --no-deps plugins_examples/line_counter")


@pytest.fixture(autouse=True)
def _shutdown():
    yield
    coral_inference.shutdown()


def _face_path() -> list[float]:
    xs: list[float] = []
    width = SIZE[0]
    for a, b in zip(WAYPOINTS, WAYPOINTS[1:], strict=False):
        steps = max(1, int(abs(b - a) * width / SPEED))
        xs.extend(np.linspace(a * width, b * width, steps, endpoint=False).tolist())
    xs.append(WAYPOINTS[-1] * width)
    return xs


def write_crossing_video(path: Path) -> int:
    """The face crossing the lines along WAYPOINTS; returns the number of frames."""
    import cv2
    from skimage import data

    from coral_inference.models.sample import ASTRONAUT_FACE_XYXY

    photo = np.ascontiguousarray(data.astronaut()[..., ::-1])
    x1, y1, x2, y2 = (int(v) for v in ASTRONAUT_FACE_XYXY)
    pad = 20
    face = photo[max(0, y1 - pad) : y2 + pad, max(0, x1 - pad) : x2 + pad]
    face = cv2.resize(face, (int(face.shape[1] * 0.8), int(face.shape[0] * 0.8)))
    h, w = face.shape[:2]
    width, height = SIZE
    rng = np.random.default_rng(3)
    background = rng.integers(90, 150, (height, width, 3), dtype=np.uint8)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, SIZE)
    xs = _face_path()
    for cx in xs:
        frame = background.copy()
        left = int(round(cx - w / 2))
        top = (height - h) // 2
        visible = face[:, max(0, -left) : w - max(0, left + w - width)]
        frame[top : top + h, max(0, left) : max(0, left) + visible.shape[1]] = visible
        writer.write(frame)
    writer.release()
    return len(xs)


def workflow_spec(model_id: str) -> dict:
    return {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {
                "type": "roboflow_core/roboflow_object_detection_model@v2",
                "name": "model",
                "images": "$inputs.image",
                "model_id": model_id,
            },
            {
                "type": "roboflow_core/byte_tracker@v3",
                "name": "tracker",
                "image": "$inputs.image",
                "detections": "$steps.model.predictions",
            },
            {
                "type": "coral/line_counter@v1",
                "name": "lines",
                "image": "$inputs.image",
                "detections": "$steps.tracker.tracked_detections",
                "lines": LINES,
                "forget_after_frames": 10,
            },
            {
                "type": "coral/line_counter_visualization@v1",
                "name": "drawn",
                "image": "$inputs.image",
                "lines": LINES,
                "count_in": "$steps.lines.count_in",
                "count_out": "$steps.lines.count_out",
            },
        ],
        "outputs": [
            {"type": "JsonField", "name": "predictions", "selector": "$steps.model.predictions"},
            {"type": "JsonField", "name": "count_in", "selector": "$steps.lines.count_in"},
            {"type": "JsonField", "name": "count_out", "selector": "$steps.lines.count_out"},
            {"type": "JsonField", "name": "entries", "selector": "$steps.lines.tracked_entries"},
            {"type": "JsonField", "name": "drawn", "selector": "$steps.drawn.image"},
        ],
    }


@pytest.fixture(scope="module")
def crossing_video(tmp_path_factory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("lines") / "crossing.mp4"
    return path, write_crossing_video(path)


@pytest.fixture(scope="module")
def sample_package(tmp_path_factory) -> Path:
    from coral_inference.models.sample import build_sample_package

    return build_sample_package(tmp_path_factory.mktemp("pkg") / "centerface").root


# -- the counting itself -----------------------------------------------------------------------


def test_crossings_each_way_several_lines_and_videos_apart():
    from coral_example_line_counter.counting import VideoCounters, parse_lines

    lines = parse_lines(LINES)
    counters = VideoCounters(forget_after_frames=5)
    ids = np.array([7])
    for x in _face_path():
        counts = counters.update("a", lines, ids, np.array([[x, 135.0]]))
    assert {n: c["in"] for n, c in counts.items()} == EXPECTED_IN
    assert {n: c["out"] for n, c in counts.items()} == EXPECTED_OUT
    # The same line, another video: its own counts (the original block shared one line state).
    other = counters.update("b", lines, ids, np.array([[100.0, 135.0]]))
    other = counters.update("b", lines, ids, np.array([[300.0, 135.0]]))
    assert other["middle"]["in"] == 1 and other["middle"]["crossed_in"] == [7]
    assert other["right"]["in"] == 0
    assert counters.update("a", lines, ids, np.array([[440.0, 135.0]]))["middle"]["in"] == 2


def test_no_count_around_the_end_of_a_segment_or_on_the_line():
    from coral_example_line_counter.counting import VideoCounters, parse_lines

    lines = parse_lines([{"name": "short", "start": [100, 100], "end": [100, 200]}])
    counters = VideoCounters()
    ids = np.array([1])
    for point in ([50, 50], [150, 50], [50, 50]):  # above the segment's top end
        counts = counters.update("v", lines, ids, np.array([point], float))
    assert (counts["short"]["in"], counts["short"]["out"]) == (0, 0)
    for point in ([50, 150], [100, 150], [100, 150], [50, 150], [100, 150], [150, 150]):
        counts = counters.update("v", lines, ids, np.array([point], float))
    assert (counts["short"]["in"], counts["short"]["out"]) == (1, 0)  # the line itself: no side


def test_state_stays_bounded_over_a_long_run():
    from coral_example_line_counter.counting import VideoCounters, parse_lines

    lines = parse_lines(LINES)
    counters = VideoCounters(forget_after_frames=20, max_videos=4)
    rng = np.random.default_rng(0)
    largest = 0
    for frame in range(20_000):
        # 5 objects at a time, each living 50 frames: 2000 distinct tracks over the run.
        ids = np.arange(5) + 5 * (frame // 50)
        counters.update("video", lines, ids, rng.uniform(0, 480, (5, 2)))
        largest = max(largest, counters.tracked_entries())
    # Per line: the 5 current tracks, plus the 5 before them for the 20 frames after a change.
    assert largest == len(LINES) * 10
    assert counters.tracked_entries() == len(LINES) * 5
    for video in range(10):
        counters.update(f"camera-{video}", lines, np.array([1]), np.array([[1.0, 1.0]]))
    assert counters.videos == [f"camera-{v}" for v in range(6, 10)]  # the 4 most recent


def test_bad_lines_are_clear_errors():
    from coral_example_line_counter.counting import parse_lines

    with pytest.raises(ValueError, match=r"lines\[0\]: expected"):
        parse_lines([{"name": "x", "start": [0, 0]}])
    with pytest.raises(ValueError, match="repeated: a"):
        parse_lines([{"name": "a", "start": [0, 0], "end": [1, 1]}] * 2)
    with pytest.raises(ValueError, match="same point"):
        parse_lines([[[3, 3], [3, 3]]])


# -- in inference ------------------------------------------------------------------------------


def test_counts_exact_per_video_in_init_with_workflow(crossing_video, sample_package):
    """Two sources in one pipeline, one line set: each video gets its own exact counts."""
    from inference import InferencePipeline

    video, frames = crossing_video
    context = coral_inference.init(
        {
            "platform": "cpu",
            "models": {"centerface": str(sample_package)},
            "plugins": {"only": ["line_counter", "local_models", "onnx"]},
        }
    )
    assert {b.__name__ for b in context.workflow_blocks} == {
        "LineCounterBlockV1",
        "LineCounterVisualizationBlockV1",
    }
    seen: dict[int, list[dict]] = {0: [], 1: []}

    def collect(results, video_frames):
        for result, frame in zip(results, video_frames, strict=True):
            if frame is not None:
                seen[frame.source_id].append(result)

    pipeline = InferencePipeline.init_with_workflow(
        video_reference=[str(video), str(video)],
        workflow_specification=workflow_spec("centerface"),
        on_prediction=collect,
    )
    pipeline.start()
    pipeline.join()
    for source, results in seen.items():
        assert len(results) == frames, source
        detected = sum(1 for r in results if len(r["predictions"]) == 1)
        assert detected >= 0.95 * frames, f"source {source}: the face in {detected}/{frames}"
        assert results[-1]["count_in"] == EXPECTED_IN, source
        assert results[-1]["count_out"] == EXPECTED_OUT, source
        assert max(r["entries"] for r in results) <= len(LINES) * 2
    drawn = seen[0][-1]["drawn"].numpy_image
    assert drawn.shape == (SIZE[1], SIZE[0], 3)
    line_colour = np.array([0, 200, 255])  # BGR, the visualisation's line colour
    assert (np.abs(drawn[200, 236:245].astype(int) - line_colour).sum(axis=1) < 60).any()


def test_coral_run_workflow_reports_the_counts(coral, crossing_video, sample_package, tmp_path):
    video, frames = crossing_video
    spec = tmp_path / "lines.json"
    spec.write_text(json.dumps(workflow_spec("centerface")))
    result = coral(
        "run",
        "--workflow",
        str(spec),
        "--model",
        str(sample_package),
        "--source",
        str(video),
        "--output-dir",
        str(tmp_path / "out"),
        "--set",
        "plugins.only=[line_counter,local_models,onnx,video_sink,metric_sink]",
        "--json",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["frames"] == frames
    assert summary["detections"] >= 0.95 * frames
    assert summary["workflow"]["outputs"]["count_in"] == EXPECTED_IN
    assert summary["workflow"]["outputs"]["count_out"] == EXPECTED_OUT
    assert summary["metrics"]["written"] == frames
    assert summary["recordings"], summary
    # a workflow's result carries no model time: the model's own record of it is reported
    assert 0 < summary["latency_ms"]["p50"] <= summary["end_to_end_ms"]["p50"]


def test_coral_run_bad_workflow_spec_is_one_clear_error(coral, crossing_video, tmp_path):
    video, _ = crossing_video
    bad = tmp_path / "bad.json"
    bad.write_text('{"steps": [\n  {"type": }\n]}')
    result = coral("run", "--workflow", str(bad), "--source", str(video), "--demo")
    assert result.returncode != 0
    assert f"--workflow {bad}:2: not JSON" in result.stderr
    assert "Traceback" not in result.stderr
    missing = coral("run", "--workflow", str(tmp_path / "nope.json"), "--source", str(video))
    assert missing.returncode != 0 and "cannot read it" in missing.stderr
