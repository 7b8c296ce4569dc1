"""``coral run --backend rknn`` end to end on x86: real inference, the stand-in RKNNLite board.

The stand-in (``coral_inference_rknn.testing.standin``) is loaded in place of the real plugin
through ``backends.modules``; its outputs come from the package's ONNX twin, so the detections
are checked against the test video's ground truth like the ONNX backend's.
"""

import json

import pytest
from face_video import iou, make_face_video
from test_coral_run import run_args

# the module, not the name: the source folder coral_inference_rknn/ imports as a namespace
pytest.importorskip("coral_inference_rknn.backend", reason="pip install ./coral_inference_rknn")
pytestmark = pytest.mark.integration

STANDIN = "coral_inference_rknn.testing.standin"
ONLY = f"local_models,buffer_sink,video_sink,metric_sink,rknn_pipeline,{STANDIN}"


@pytest.fixture(scope="module")
def rknn_package(tmp_path_factory):
    from coral_inference.models.sample import build_sample_package
    from coral_inference_rknn.testing.standin import build_standin_package

    onnx = build_sample_package(tmp_path_factory.mktemp("onnx") / "centerface")
    return build_standin_package(onnx, tmp_path_factory.mktemp("rknn") / "centerface").root


def test_plugins_list_and_doctor_explain_the_backend(coral):
    listed = coral("plugins", "list", "--group", "backends", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    rows = rows.get("plugins", rows) if isinstance(rows, dict) else rows
    rknn = next(row for row in rows if row["name"] == "rknn")
    assert rknn["status"] == "loaded" and rknn["distribution"] == "coral-inference-rknn"
    doctor = coral("doctor", "--json")
    assert doctor.returncode == 0, doctor.stderr
    report = json.loads(doctor.stdout)
    assert report["backends"]["rknn"].startswith("unavailable: this is Linux x86_64")
    assert report["backend rknn"]["soc"] == "not a Rockchip board"


def test_coral_run_backend_rknn_detects_the_faces(coral, tmp_path, rknn_package):
    video = tmp_path / "faces.mp4"
    truth = make_face_video(video, (640, 360), frames=30)
    predictions = tmp_path / "p.jsonl"
    result = coral(
        "-v",
        *run_args(
            rknn_package,
            video,
            tmp_path / "out",
            "--json",
            "--backend",
            "rknn",
            "--save-predictions",
            str(predictions),
            "--set",
            f'backends.modules=["{STANDIN}"]',
        ),
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["backend"] == "rknn" and summary["frames"] == len(truth)
    # one stream, three contexts: the pipelining patch fed the pool three frames at a time
    assert "rknn pool for model.rknn on rk3588: 3 context(s)" in result.stderr
    assert "pipelining the inference loop: up to 3 frames in flight" in result.stderr
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [line["frame_id"] for line in lines] == list(range(1, len(truth) + 1))
    hits = faces = false_boxes = 0
    for line in lines:
        expected = truth[line["frame_id"] - 1]
        boxes = [[d["x1"], d["y1"], d["x2"], d["y2"]] for d in line["detections"]]
        if expected:
            faces += 1
            hits += any(iou(box, expected[0]) >= 0.5 for box in boxes)
        else:
            false_boxes += len(boxes)
    assert hits >= 0.95 * faces and false_boxes <= 1, (hits, faces, false_boxes)


def test_coral_run_rknn_package_for_another_soc_fails_clearly(coral, tmp_path, rknn_package):
    import shutil

    other = tmp_path / "rk3576"
    shutil.copytree(rknn_package, other)
    manifest = json.loads((other / "model.json").read_text())
    manifest["rknn"]["target"] = "rk3576"
    (other / "model.json").write_text(json.dumps(manifest))
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=5)
    result = coral(
        *run_args(other, video, tmp_path / "out", "--backend", "rknn"),
        "--set",
        f'backends.modules=["{STANDIN}"]',
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode != 0
    assert "built for rk3576 but this board is rk3588" in result.stderr
    assert "Traceback" not in result.stderr


def test_rknn_options_are_typed_config(coral, tmp_path):
    template = coral("config", "init", env={"CORAL_PLUGINS__ONLY": "rknn"})
    assert template.returncode == 0, template.stderr
    assert "core_mask" in template.stdout and "pool_size" in template.stdout
    bad = coral(
        "config",
        "validate",
        "--set",
        "backends.options.rknn.core_mask=0_1_3",
        env={"CORAL_PLUGINS__ONLY": "rknn"},
    )
    assert bad.returncode == 2
    assert "backends.options.rknn.core_mask" in bad.stderr and "0_1_2" in bad.stderr


def test_convert_without_the_toolkit_says_how_to_get_it(coral, tmp_path, rknn_package):
    result = coral(
        "rknn",
        "convert",
        str(rknn_package),
        str(tmp_path / "out"),
        "--target",
        "rk3588",
        env={"CORAL_PLUGINS__ONLY": "rknn", "XDG_DATA_HOME": str(tmp_path / "data")},
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Usage:" not in result.stderr  # not a usage error: the toolkit is missing
    assert "rknn-toolkit2 is not installed here" in result.stderr
    assert (
        f"coral rknn setup-converter {tmp_path / 'data'}/coral-inference/rknn-toolkit"
        in result.stderr
    )


def test_pipelining_patch_is_a_switchable_patch(coral):
    result = coral(
        "init",
        "--json",
        "--set",
        "patches.rknn_pipeline=false",
        env={"CORAL_PLUGINS__ONLY": "rknn,rknn_pipeline"},
    )
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["patches"]["rknn_pipeline"]["status"] == "disabled"


def test_convert_with_a_python_lacking_the_tool_is_one_json_error(coral, tmp_path, rknn_package):
    result = coral(
        "rknn",
        "convert",
        str(rknn_package),
        str(tmp_path / "out"),
        "--target",
        "rk3588",
        "--toolkit-python",
        "/usr/bin/python3",
        "--json",
        env={"CORAL_PLUGINS__ONLY": "rknn"},
    )
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    error = json.loads(lines[0])["error"]
    assert "is coral-inference-rknn installed in that environment?" in error
