"""The example plugin distributions in ``plugins_examples/``, installed, against real inference.

Install them with ``pip install --no-deps plugins_examples/*`` (tox does); each test is skipped,
saying so, when the distribution it needs is not installed.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest

import coral_inference
from coral_inference.models.inference_models import open_model
from coral_inference.models.nms import box_iou
from coral_inference.models.sample import ASTRONAUT_FACE_XYXY
from coral_inference.runtime.compat import import_object
from coral_inference.runtime.config import ConfigError, load_config

pytestmark = pytest.mark.integration

#: plugin (entry-point) name -> (distribution, folder under plugins_examples/, group, hooks)
EXAMPLES = {
    "opencv_dnn": (
        "coral-example-backend-opencv",
        "backend_opencv",
        "backends",
        ["declare_options", "register_backend"],
    ),
    "detection_count": (
        "coral-example-workflow-block",
        "workflow_block",
        "workflows",
        ["register_workflow_block"],
    ),
    "frame_stamp": (
        "coral-example-patch-frame-stamp",
        "patch_frame_stamp",
        "patches",
        ["apply_patch"],
    ),
    "line_counter": (
        "coral-example-line-counter",
        "line_counter",
        "workflows",
        ["register_workflow_block"],
    ),
}
BLOCK_TYPE = "coral/detection_count@v1"
RENDER_BOXES = "inference.core.interfaces.stream.sinks:render_boxes"


def installed(plugin: str) -> bool:
    try:
        metadata.version(EXAMPLES[plugin][0])
    except metadata.PackageNotFoundError:
        return False
    return True


def require(plugin: str) -> None:
    """Skip the test unless the example distribution providing ``plugin`` is installed."""
    if not installed(plugin):
        dist, folder = EXAMPLES[plugin][:2]
        pytest.skip(f"{dist} is not installed: pip install --no-deps plugins_examples/{folder}")


@pytest.fixture(autouse=True)
def _shutdown():
    yield
    coral_inference.shutdown()


@pytest.fixture(scope="module")
def sample_package(tmp_path_factory):
    from coral_inference.models.sample import build_sample_package

    return build_sample_package(tmp_path_factory.mktemp("pkg") / "centerface").root


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[..., ::-1])


# -- listing -----------------------------------------------------------------------------------


def test_plugins_list_shows_examples_loaded_and_light(coral):
    present = [name for name in EXAMPLES if installed(name)]
    if not present:
        pytest.skip("no example plugin is installed: pip install --no-deps plugins_examples/*")
    result = coral("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    records = {record["name"]: record for record in json.loads(result.stdout)}
    for name in present:
        dist, _, group, hooks = EXAMPLES[name]
        record = records[name]
        assert (record["status"], record["group"], record["distribution"]) == (
            "loaded",
            group,
            dist,
        ), record
        assert record["hooks"] == hooks
        assert record["requires"] == ["coral-inference>=0.1"]

    # Importing the entry-point modules (what listing does) imports no inference/OpenCV.
    modules = [f"coral_example_{EXAMPLES[name][1]}.plugin" for name in present]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in ('inference', 'cv2', 'supervision') if m in sys.modules))"
    )
    probe = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert probe.stdout.strip() == "[]"


# -- backend -----------------------------------------------------------------------------------


def test_opencv_backend_detects_the_astronaut_like_onnxruntime(sample_package, astronaut_bgr):
    require("opencv_dnn")
    context = coral_inference.init(
        {
            "platform": "cpu",
            "backends": {"preferred": ["opencv_dnn"]},
            "plugins": {"only": ["opencv_dnn", "onnx"]},
        }
    )
    assert context.get_backend().name == "opencv_dnn"
    assert context.state["backends"]["opencv_dnn"]["available"] is True
    assert context.backend_plugins["opencv_dnn"] == "opencv_dnn"

    with open_model(sample_package, context, backend="onnx") as runner:
        reference = runner.predict(astronaut_bgr)
    with open_model(sample_package, context, backend="opencv_dnn") as runner:
        # Another input shape first: a net shaped for it must not leak into the next call.
        runner.predict(np.ascontiguousarray(astronaut_bgr[:300, :400]))
        found = runner.predict(astronaut_bgr)
    assert len(reference) == 1 and len(found) == 1
    assert box_iou(found.xyxy, reference.xyxy)[0, 0] >= 0.7
    # Same weights, same pre-processing: the two runtimes agree to float precision (a net
    # reused across input shapes was off by several pixels here).
    np.testing.assert_allclose(found.xyxy, reference.xyxy, atol=0.5)
    np.testing.assert_allclose(found.confidence, reference.confidence, atol=1e-3)
    truth = np.array([ASTRONAUT_FACE_XYXY], np.float32)
    assert box_iou(found.xyxy, truth)[0, 0] >= 0.7


def test_opencv_backend_options_are_typed_at_load(sample_package):
    require("opencv_dnn")
    with pytest.raises(ConfigError, match=r"backends.options.opencv_dnn.threads: unknown key"):
        coral_inference.init(
            {
                "platform": "cpu",
                "plugins": {"only": ["opencv_dnn"]},
                "backends": {"options": {"opencv_dnn": {"threads": 2}}},
            }
        )
    with pytest.raises(ConfigError, match=r"opencv_dnn.target: expected one of cpu, opencl"):
        load_config(env={}, overrides=["backends.options.opencv_dnn.target=cuda"])
    checked = load_config(env={}, overrides=["backends.options.opencv_dnn.max_shapes=2"])
    assert checked.get("backends.options.opencv_dnn") == {"target": "cpu", "max_shapes": 2}


# -- workflow block ----------------------------------------------------------------------------


def _prediction(x: float, label: str, class_id: int) -> dict:
    return {
        "x": x,
        "y": 50.0,
        "width": 20.0,
        "height": 30.0,
        "confidence": 0.9,
        "class": label,
        "class_id": class_id,
    }


WORKFLOW = {
    "version": "1.0",
    "inputs": [
        {
            "type": "WorkflowBatchInput",
            "name": "detections",
            "kind": ["object_detection_prediction"],
        }
    ],
    "steps": [{"type": BLOCK_TYPE, "name": "count", "predictions": "$inputs.detections"}],
    "outputs": [
        {"type": "JsonField", "name": "count", "selector": "$steps.count.count"},
        {"type": "JsonField", "name": "per_class", "selector": "$steps.count.count_per_class"},
    ],
}
IMAGE = {"width": 320, "height": 240}
DETECTIONS = [
    {
        "image": IMAGE,
        "predictions": [
            _prediction(40, "car", 0),
            _prediction(120, "person", 1),
            _prediction(200, "car", 0),
        ],
    },
    {"image": IMAGE, "predictions": []},
]


def _offered_block_types() -> set[str]:
    from inference.core.workflows.execution_engine.introspection.blocks_loader import (
        describe_available_blocks,
    )

    return {b.manifest_type_identifier for b in describe_available_blocks(dynamic_blocks=[]).blocks}


def test_detection_count_block_runs_in_the_execution_engine():
    require("detection_count")
    from inference.core.workflows.errors import WorkflowSyntaxError
    from inference.core.workflows.execution_engine.core import ExecutionEngine

    before = os.environ.get("WORKFLOWS_PLUGINS")
    context = coral_inference.init({"platform": "cpu", "plugins": {"only": ["detection_count"]}})
    assert [b.__name__ for b in context.workflow_blocks] == ["DetectionCountBlockV1"]
    assert BLOCK_TYPE in _offered_block_types()

    engine = ExecutionEngine.init(workflow_definition=WORKFLOW, init_parameters={})
    result = engine.run(runtime_parameters={"detections": DETECTIONS})
    assert result == [
        {"count": 3, "per_class": {"car": 2, "person": 1}},
        {"count": 0, "per_class": {}},
    ]

    coral_inference.shutdown()
    assert os.environ.get("WORKFLOWS_PLUGINS") == before
    assert BLOCK_TYPE not in _offered_block_types()
    # inference caches compiled workflows by definition alone, so WORKFLOW itself would still
    # compile from that cache; a definition not compiled before no longer can.
    renamed = {**WORKFLOW, "steps": [{**WORKFLOW["steps"][0], "name": "count_again"}]}
    renamed["outputs"] = [
        {**output, "selector": output["selector"].replace("count.", "count_again.")}
        for output in WORKFLOW["outputs"]
    ]
    with pytest.raises(WorkflowSyntaxError) as refused:
        ExecutionEngine.init(workflow_definition=renamed, init_parameters={})
    assert [e.block_type for e in refused.value.blocks_errors] == [BLOCK_TYPE]


# -- patch -------------------------------------------------------------------------------------


def _render(frames, render_boxes=None):
    """Render empty predictions on ``frames`` with ``render_boxes`` (default: inference's, as
    looked up in its module now); returns what ``on_frame_rendered`` got."""
    render_boxes = render_boxes or import_object(RENDER_BOXES)
    rendered = []
    predictions = (
        [{"image": IMAGE, "predictions": []} for _ in frames]
        if isinstance(frames, list)
        else {"image": IMAGE, "predictions": []}
    )
    render_boxes(
        predictions,
        frames,
        display_size=None,
        fps_monitor=None,
        on_frame_rendered=rendered.append,
    )
    return rendered[0]


def test_frame_stamp_patch_stamps_rendered_frames_and_reverts():
    require("frame_stamp")
    from inference.core.interfaces.camera.entities import VideoFrame

    captured = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    frame = VideoFrame(
        image=np.zeros((240, 320, 3), np.uint8), frame_id=1, frame_timestamp=captured
    )
    original = import_object(RENDER_BOXES)
    assert not _render(frame)[1].any()

    context = coral_inference.init({"platform": "cpu", "plugins": {"only": ["frame_stamp"]}})
    record = context.patches["frame_stamp"]
    assert (record.status, record.plugin, record.inference_range) == (
        "applied",
        "frame_stamp",
        ">=0.54,<1.9",
    )
    assert record.targets == ["inference.core.interfaces.stream.sinks", RENDER_BOXES]
    from coral_example_patch_frame_stamp.stamp import stamp_image, stamp_text

    assert stamp_text(frame) == "2026-01-02 03:04:05.678 UTC"
    held = import_object(RENDER_BOXES)  # as a VideoFileSink created now would hold it
    _, image = _render(frame)
    assert image[:200].sum() == 0 and image[200:, :200].any()  # bottom-left only
    np.testing.assert_array_equal(image, stamp_image(frame.image, frame))
    assert not frame.image.any()  # the frame itself is left alone

    # A batch: each rendered image stamped with its own frame; no frame, no stamp.
    (first, stamped), (second, blank) = _render([frame, None])
    assert (first, second) == (0, 1) and stamped[200:].any() and not blank.any()

    coral_inference.shutdown()
    assert import_object(RENDER_BOXES) is original
    assert not _render(frame)[1].any()
    assert not _render(frame, held)[1].any()  # the wrapper itself is off once reverted
