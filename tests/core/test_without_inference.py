"""The core where no ``inference`` is installed (tox env ``core``): it must still list plugins,
validate config and run the doctor, and say clearly what is missing."""

import importlib.util
import json

import pytest

pytestmark = [
    pytest.mark.core,
    pytest.mark.skipif(
        importlib.util.find_spec("inference") is not None,
        reason="inference is installed here; the tox env 'core' runs these without it",
    ),
]


def test_doctor_says_inference_is_missing(coral):
    result = coral("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inference"]["version"] == "not installed"
    assert any("pip install './[cpu]'" in step for step in report["next_steps"])


def test_init_reports_no_inference_and_skips_patches(coral):
    result = coral("init", "--json", "--strict")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    assert state["versions"]["inference"] is None
    for name in ("buffer_sink", "video_sink", "metric_sink"):
        assert state["patches"][name]["status"] == "skipped"
        assert "inference is not installed" in state["patches"][name]["reason"]


def test_plugins_list_and_config_work(coral, tmp_path):
    listed = json.loads(coral("plugins", "list", "--json").stdout)
    assert {r["name"] for r in listed} >= {"video_sink", "metric_sink", "local_models"}
    config = tmp_path / "c.yaml"
    config.write_text("platform: cpu\n")
    assert coral("config", "validate", "-c", str(config)).returncode == 0
