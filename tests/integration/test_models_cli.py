"""``coral models import-onnx | inspect`` on real ONNX files, then ``coral run`` on the result."""

import json
import shutil

import pytest
from face_video import iou, make_face_video
from test_coral_run import ONLY, run_args

pytestmark = pytest.mark.integration


def import_onnx(coral, onnx, out, *extra):
    return coral(
        "models",
        "import-onnx",
        str(onnx),
        str(out),
        "--name",
        "faces2",
        "--decoder",
        "centerface",
        "--classes",
        "face",
        *extra,
    )


def face_hits(predictions, truth) -> tuple[int, int]:
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    hits = faces = 0
    for line in lines:
        expected = truth[line["frame_id"] - 1]
        if expected:
            faces += 1
            boxes = [[d["x1"], d["y1"], d["x2"], d["y2"]] for d in line["detections"]]
            hits += any(iou(box, expected[0]) >= 0.5 for box in boxes)
    return hits, faces


def test_imported_centerface_finds_the_faces_the_sample_finds(coral, tmp_path, sample_package):
    imported = tmp_path / "imported"
    made = import_onnx(coral, sample_package / "model.onnx", imported)
    assert made.returncode == 0, made.stderr
    manifest = json.loads((imported / "model.json").read_text())
    assert manifest["input"]["scale"] == 1.0 and manifest["input"]["pad_value"] == 0
    video = tmp_path / "faces.mp4"
    truth = make_face_video(video, (320, 240), frames=20)
    predictions = tmp_path / "p.jsonl"
    result = coral(
        *run_args(imported, video, tmp_path / "out", "--save-predictions", str(predictions)),
        env={"CORAL_PLUGINS__ONLY": ONLY},
    )
    assert result.returncode == 0, result.stderr
    hits, faces = face_hits(predictions, truth)
    assert faces > 0 and hits >= 0.95 * faces, (hits, faces)


def test_import_refuses_to_overwrite_without_force(coral, tmp_path, sample_package):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    refused = import_onnx(coral, sample_package / "model.onnx", out)
    assert refused.returncode == 1 and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr and not (out / "model.json").exists()
    forced = import_onnx(coral, sample_package / "model.onnx", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (out / "model.json").exists() and (out / "notes.txt").read_text() == "mine"


def test_inspect_loads_the_weights_unless_told_not_to(coral, tmp_path, sample_package):
    truncated = tmp_path / "truncated"
    shutil.copytree(sample_package, truncated)
    (truncated / "model.onnx").write_bytes((sample_package / "model.onnx").read_bytes()[:5000])
    env = {"CORAL_PLUGINS__ONLY": ONLY}
    loaded = coral("models", "inspect", str(truncated), env=env)
    assert loaded.returncode == 1 and "onnxruntime cannot load this model" in loaded.stderr
    assert "Traceback" not in loaded.stderr
    skipped = coral("models", "inspect", str(truncated), "--no-load", "--json", env=env)
    assert skipped.returncode == 0, skipped.stderr
    assert json.loads(skipped.stdout)["loaded_on"] is None
    good = coral("models", "inspect", str(sample_package), "--json", env=env)
    assert json.loads(good.stdout)["loaded_on"] == "onnx"


def test_inspect_reports_every_manifest_problem_at_once(coral, tmp_path, sample_package):
    broken = tmp_path / "broken"
    shutil.copytree(sample_package, broken)
    manifest = json.loads((broken / "model.json").read_text())
    del manifest["classes"]
    manifest["input"]["scale"] = "one"
    manifest["thresholds"]["confidence"] = 2
    manifest["colour"] = "RGB"
    (broken / "model.json").write_text(json.dumps(manifest))
    result = coral("models", "inspect", str(broken), "--no-load")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    for problem in (
        "model.json: classes: missing required field",
        "model.json: input.scale:",
        "model.json: thresholds.confidence:",
        "model.json: colour: unknown key",
    ):
        assert problem in result.stderr, result.stderr
