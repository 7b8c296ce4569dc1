"""What a new user meets with the RKNN backend installed on a machine that is not the board:
``coral doctor``'s advice, the ``rknn_pipeline`` patch's status, ``coral rknn`` without the
converter toolkit."""

from __future__ import annotations

import importlib.metadata
import json

import pytest

from coral_inference_rknn.board import probe_board

STANDIN = "coral_inference_rknn.testing.standin"


def _toolkit_installed() -> bool:
    # the distribution, not find_spec("rknn"): under pytest that finds the tests/rknn folder
    try:
        importlib.metadata.version("rknn-toolkit2")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


off_board = pytest.mark.skipif(
    probe_board().availability().available, reason="this machine is an RKNN board"
)


@off_board
def test_doctor_next_steps_say_how_to_use_the_unavailable_rknn_backend(coral):
    result = coral("doctor", "--json", env={"CORAL_PLUGINS__ONLY": "rknn,onnx"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["backends"]["onnx"].startswith("available")
    steps = report["next_steps"]
    assert "nothing: all good" not in steps
    (rknn,) = [step for step in steps if step.startswith("backend rknn is unavailable: ")]
    assert "coral run --model PACKAGE --backend onnx --source VIDEO" in rknn
    assert "coral rknn convert PACKAGE OUT --target SOC" in rknn
    assert "coral models import-onnx" in rknn


@off_board
def test_pipelining_patch_is_skipped_where_the_rknn_backend_cannot_run(coral):
    result = coral("init", "--json", env={"CORAL_PLUGINS__ONLY": "rknn,rknn_pipeline"})
    assert result.returncode == 0, result.stderr
    patch = json.loads(result.stdout)["patches"]["rknn_pipeline"]
    assert patch["status"] == "skipped", patch
    assert patch["reason"].startswith("the rknn backend is unavailable here, nothing to pipeline")
    assert "not an aarch64 Linux Rockchip board" in patch["reason"]


def test_pipelining_patch_is_applied_on_the_standin_board(coral):
    pytest.importorskip("inference")
    result = coral(
        "init",
        "--json",
        "--set",
        f'backends.modules=["{STANDIN}"]',
        env={"CORAL_PLUGINS__ONLY": f"rknn_pipeline,{STANDIN}"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["patches"]["rknn_pipeline"]["status"] == "applied"


def test_a_later_runtime_without_the_standin_skips_the_pipelining_patch():
    """The stand-in's board counts only while the runtime that registered it runs."""
    pytest.importorskip("inference")
    if probe_board().availability().available:
        pytest.skip("this machine is an RKNN board")
    import coral_inference

    try:
        with_standin = coral_inference.init(
            {"plugins": {"only": ["rknn_pipeline", STANDIN]}, "backends": {"modules": [STANDIN]}}
        )
        assert with_standin.patches["rknn_pipeline"].status == "applied"
        without = coral_inference.init({"plugins": {"only": ["rknn", "rknn_pipeline"]}})
        assert without.patches["rknn_pipeline"].status == "skipped"
    finally:
        coral_inference.shutdown()


@pytest.mark.skipif(_toolkit_installed(), reason="rknn-toolkit2 is installed here")
def test_convert_without_the_toolkit_is_one_error_line_not_a_usage_error(
    coral, tmp_path, onnx_sample
):
    result = coral(
        "rknn",
        "convert",
        str(onnx_sample.root),
        str(tmp_path / "out"),
        "--target",
        "rk3588",
        env={"CORAL_PLUGINS__ONLY": "rknn", "XDG_DATA_HOME": str(tmp_path / "data")},
    )
    assert result.returncode == 1, result.stderr
    assert "Usage:" not in result.stderr and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: rknn-toolkit2 is not installed here")
    assert f"coral rknn setup-converter {tmp_path / 'data'}/coral-inference/rknn-toolkit" in line
    assert "--cpu-torch" in line


def test_setup_converter_help_gives_size_time_and_the_cpu_torch_variant(coral):
    result = coral("rknn", "setup-converter", "--help", env={"CORAL_PLUGINS__ONLY": "rknn"})
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "5.6 GB" in text and "torch<=2.4" in text and "CUDA build" in text
    assert "minutes" in text
    assert "--cpu-torch" in text and "1.6 GB" in text
