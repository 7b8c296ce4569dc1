"""``coral rknn convert`` with the real rknn-toolkit2 and its simulator (tox env ``rknn``).

Each test prints its agreement figures (run with ``-s`` to see them).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from yolo_graph import build_yolov8_package, square_images

from coral_inference.models.package import load_package


def convert(*args: str) -> tuple[int, dict, str]:
    done = subprocess.run(
        [sys.executable, "-m", "coral_inference.cli", "rknn", "convert", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        stdin=subprocess.DEVNULL,
    )
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout[-2000:]  # exactly one JSON object; toolkit logs on stderr
    return done.returncode, json.loads(lines[0]), done.stderr


def show(label: str, result: dict) -> None:
    report = result["verify"]
    cosines = ", ".join(f"{c['mean']:.4f}" for c in report["cosine"])
    det = report["detections"]
    print(
        f"\n[agreement] {label}: cosine per output (mean) {cosines}; detections matched "
        f"{det['matched']}/{det['reference']} (recall {det['recall']}), mean IoU {det['mean_iou']}"
        f"; build {result['build_seconds']} s"
    )


def test_centerface_fp16_agrees_with_onnxruntime(toolkit, sample_package, face_images, tmp_path):
    _, verify = face_images
    out = tmp_path / "fp16"
    code, result, stderr = convert(
        str(sample_package.root),
        str(out),
        "--target",
        "rk3588",
        "--input-size",
        "640x480",
        "--verify",
        str(verify),
    )
    assert code == 0, (result, stderr[-3000:])
    show("centerface rk3588 fp16", result)
    report = result["verify"]
    assert report["passed"] and min(c["mean"] for c in report["cosine"]) >= 0.999
    assert report["detections"]["reference"] >= 5
    assert report["detections"]["recall"] == 1.0 and report["detections"]["mean_iou"] >= 0.99
    package = load_package(out)
    assert package.manifest.rknn.target == "rk3588" and package.manifest.rknn.quantization == "fp16"
    assert package.manifest.rknn.toolkit_version == "2.5.0"
    assert package.manifest.input.dtype == "uint8" and package.manifest.input.layout == "NHWC"
    assert package.weights_path("rknn").read_bytes()[:4] == b"RKNN"
    from coral_inference_rknn.backend import rknn_file_target

    assert rknn_file_target(package.weights_path("rknn")) == "rk3588"  # the board checks this


def test_centerface_int8_agrees_with_onnxruntime(toolkit, sample_package, face_images, tmp_path):
    calib, verify = face_images
    code, result, stderr = convert(
        str(sample_package.root),
        str(tmp_path / "int8"),
        "--target",
        "rk3588",
        "--input-size",
        "640x480",
        "--quantize",
        "int8",
        "--dataset",
        str(calib),
        "--verify",
        str(verify),
    )
    assert code == 0, (result, stderr[-3000:])
    show("centerface rk3588 int8", result)
    det = result["verify"]["detections"]
    assert det["recall"] >= 0.9 and det["mean_iou"] >= 0.9
    assert result["verify"]["cosine"][0]["mean"] >= 0.9  # the heatmap


def test_yolov8_head_goes_through_the_split_layout_in_int8(toolkit, tmp_path):
    package = build_yolov8_package(tmp_path / "pkg")
    calib = square_images(tmp_path / "calib", 20, seed=1)
    verify = square_images(tmp_path / "verify", 10, seed=2)
    code, result, stderr = convert(
        str(package.root),
        str(tmp_path / "out"),
        "--target",
        "rk3588",
        "--quantize",
        "int8",
        "--dataset",
        str(calib),
        "--verify",
        str(verify),
    )
    assert code == 0, (result, stderr[-3000:])
    show("yolov8-style split head rk3588 int8", result)
    assert result["decoder"] == "yolov8_split"
    assert len(result["verify"]["cosine"]) == 9  # box, scores, score sum per stride
    det = result["verify"]["detections"]
    assert det["reference"] >= 10 and det["recall"] >= 0.9 and det["mean_iou"] >= 0.8
    assert load_package(tmp_path / "out").manifest.decoder.type == "yolov8_split"


def test_thresholds_fail_the_command(toolkit, sample_package, face_images, tmp_path):
    _, verify = face_images
    code, result, _ = convert(
        str(sample_package.root),
        str(tmp_path / "x"),
        "--target",
        "rk3588",
        "--input-size",
        "320x256",
        "--verify",
        str(verify),
        "--min-iou",
        "1.01",
    )
    assert code == 3 and result["verify"]["passed"] is False


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        ([], 1, "the model's input size is dynamic; give --input-size WxH"),
        (["--input-size", "640x480", "--quantize", "int8"], 2, "--quantize int8 needs --dataset"),
        (["--input-size", "64"], 2, "expected WIDTHxHEIGHT"),
    ],
)
def test_bad_requests_are_one_line_errors(toolkit, sample_package, tmp_path, extra, code, words):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coral_inference.cli",
            "rknn",
            "convert",
            str(sample_package.root),
            str(tmp_path / "o"),
            "--target",
            "rk3588",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == code, done.stderr[-2000:]
    assert words in done.stderr and "Traceback" not in done.stderr
