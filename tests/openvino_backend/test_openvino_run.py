"""``coral run --backend openvino`` end to end (real inference, OpenVINO and onnxruntime), and
what ``coral doctor`` / ``coral init`` say about OpenVINO and ``backends.preferred: auto``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from matching import matched_ious

pytestmark = pytest.mark.integration
ONLY = "onnx,openvino,local_models,buffer_sink"


@pytest.fixture(scope="module")
def sample_video(tmp_path_factory):
    from coral_inference.models.sample import generate_sample_video

    video = tmp_path_factory.mktemp("ov-run") / "faces.mp4"
    generate_sample_video(video, frames=40)
    return video


def run_predictions(coral, package, video, out, backend: str, *extra: str):
    result = coral(
        "run",
        "--model",
        str(package.root),
        "--source",
        str(video),
        "--output-dir",
        str(out),
        "--backend",
        backend,
        "--json",
        "--save-predictions",
        str(out / "p.jsonl"),
        *extra,
        env={"CORAL_PLUGINS__ONLY": ONLY},
        timeout=300,
    )
    return result


def test_openvino_run_gives_the_onnx_runs_detections(coral, tmp_path, sample, sample_video):
    per_backend = {}
    for backend in ("onnx", "openvino"):
        out = tmp_path / backend
        result = run_predictions(coral, sample, sample_video, out, backend)
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["backend"] == backend and summary["frames"] == 40
        lines = [json.loads(line) for line in (out / "p.jsonl").read_text().splitlines()]
        per_backend[backend] = [
            [[d["x1"], d["y1"], d["x2"], d["y2"]] for d in line["detections"]]
            for line in sorted(lines, key=lambda line: line["frame_id"])
        ]
    assert sum(len(frame) for frame in per_backend["onnx"]) >= 20
    ious = matched_ious(per_backend["onnx"], per_backend["openvino"])
    assert np.mean(ious) >= 0.99, ious


def test_missing_device_fails_the_run_with_one_clear_error(coral, tmp_path, sample, sample_video):
    import openvino as ov

    if "NPU" in ov.Core().available_devices:
        pytest.skip("this machine has an NPU")
    result = run_predictions(
        coral,
        sample,
        sample_video,
        tmp_path / "out",
        "openvino",
        "--set",
        "backends.options.openvino.device=NPU",
    )
    assert result.returncode != 0
    error = json.loads(result.stdout)["error"]
    assert error.startswith("backends.options.openvino.device: NPU not available here"), error
    assert "CPU" in error and "Traceback" not in result.stderr


def test_doctor_lists_openvino_version_and_devices(coral):
    import openvino as ov

    result = coral("doctor", "--json", env={"CORAL_PLUGINS__ONLY": ONLY})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    section = report["backend openvino"]
    assert section["openvino"] == ov.get_version().split("-")[0]
    core = ov.Core()
    assert section["devices"] == ", ".join(core.available_devices)
    for name in core.available_devices:
        assert section[f"device {name}"] == core.get_property(name, "FULL_DEVICE_NAME")
    assert report["backends"]["openvino"].startswith("available: openvino ")
    assert report["backend choice"]["chosen"] == "onnx"  # the default list: [rknn, onnx]

    auto = coral(
        "doctor", "--json", "--set", "backends.preferred=auto", env={"CORAL_PLUGINS__ONLY": ONLY}
    )
    choice = json.loads(auto.stdout)["backend choice"]
    assert choice["chosen"] == "openvino" and choice["why"].startswith("backends.preferred is auto")
    assert choice["rank openvino"].startswith(("200: OpenVINO on CPU", "300: OpenVINO on "))
