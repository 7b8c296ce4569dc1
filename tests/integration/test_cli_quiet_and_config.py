"""The CLI is quiet by default, advises only what exists, and --output-dir always works."""

import json

import pytest
from face_video import make_face_video
from test_coral_run import ONLY, run_args

pytestmark = pytest.mark.integration
ENV = {"CORAL_PLUGINS__ONLY": ONLY}


def test_coral_init_prints_none_of_inferences_import_warnings(coral):
    result = coral("init", env=ENV)
    assert result.returncode == 0, result.stderr
    assert "does not support" not in result.stderr, result.stderr
    assert "ModelDependencyMissing" not in result.stderr


@pytest.mark.parametrize(
    ("backend", "advice"),
    [("rknn", "pip install ./coral_inference_rknn"), ("foo", "no published backend")],
)
def test_backend_advice_names_only_distributions_that_exist(
    coral, tmp_path, sample_package, backend, advice
):
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=5)
    result = coral(
        *run_args(sample_package, video, tmp_path / "out", "--backend", backend), env=ENV
    )
    assert result.returncode == 1 and advice in result.stderr, result.stderr
    assert "coral-inference-foo" not in result.stderr


def test_another_tools_coral_variable_is_a_warning_not_an_error(coral):
    env = {**ENV, "CORAL_API_TOKEN": "belongs to another tool"}
    result = coral("config", "validate", env=env)
    assert result.returncode == 0, result.stderr
    assert "ignoring environment variable CORAL_API_TOKEN" in result.stderr
    strict = coral("init", "--strict", env=env)
    assert strict.returncode == 2 and "CORAL_API_TOKEN" in strict.stderr


def test_output_dir_moves_the_outputs_of_a_config_init_template(coral, tmp_path, sample_package):
    made = coral("config", "init", "-o", "coral.yaml")  # every installed plugin's sections
    assert made.returncode == 0, made.stderr
    video = tmp_path / "faces.mp4"
    make_face_video(video, (320, 240), frames=10)
    args = run_args(sample_package, video, tmp_path / "out2", "--json")
    result = coral(*args[:1], "-c", "coral.yaml", *args[1:])
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["recordings"] and all(
        path.startswith(str(tmp_path / "out2" / "recordings")) for path in summary["recordings"]
    )
    assert summary["metrics"]["target"] == str(tmp_path / "out2" / "metrics.db")
    assert not (tmp_path / "coral-output").exists()
