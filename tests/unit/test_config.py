import json

import pytest

from coral_inference.runtime.config import ConfigError, load_config, reference_rows, render_template

pytestmark = pytest.mark.core


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def issues(exc_info):
    return [str(issue) for issue in exc_info.value.issues]


def test_defaults_without_sources():
    config = load_config(env={})
    assert config.get("platform") == "auto"
    assert config.get("patches.video_sink.enabled") is True
    assert config.get("services.metrics.batch_size") == 500
    assert config.sources["platform"] == "default"


def test_precedence_file_env_cli_with_sources(tmp_path):
    path = write(
        tmp_path,
        "c.yaml",
        "platform: cpu\nservices:\n  metrics:\n    batch_size: 10\n    store: sqlite\n",
    )
    env = {
        "CORAL_SERVICES__METRICS__BATCH_SIZE": "20",
        "CORAL_ENABLE_VIDEO_SINK": "off",
        "CORAL_RUNTIME_PLATFORM": "rknn",
        "CORAL_BACKEND_MODULES": "a.b, c.d",
    }
    config = load_config(path, env=env, overrides=["platform=jetson", "backends.preferred=[onnx]"])
    assert config.get("services.metrics.batch_size") == 20
    assert (
        config.sources["services.metrics.batch_size"] == "env CORAL_SERVICES__METRICS__BATCH_SIZE"
    )
    assert config.get("services.metrics.store") == "sqlite"
    assert config.sources["services.metrics.store"] == f"file {path}:5"
    assert config.get("patches.video_sink.enabled") is False
    assert config.get("platform") == "jetson" and config.sources["platform"] == "--set platform"
    assert config.get("backends.modules") == ["a.b", "c.d"]
    assert config.get("backends.preferred") == ["onnx"]


def test_unknown_key_names_file_line_and_suggests(tmp_path):
    path = write(tmp_path, "c.yaml", "services:\n  metrics:\n    bach_size: 3\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    (message,) = issues(exc)
    assert message.startswith(f"file {path}:3: services.metrics.bach_size: unknown key")
    assert "did you mean 'batch_size'" in message


def test_core_and_plugin_section_errors_are_reported_together(tmp_path):
    """A typo in a core section no longer hides one in a plugin's: the plugins' sections are
    checked even when the core's have errors, and every problem names its source."""
    path = write(
        tmp_path,
        "c.yaml",
        "services:\n  recording:\n    segment_secnds: 5\npatches:\n  vidoe_sink: false\n",
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={}, overrides=["patches.metric_sink.enabeld=true"])
    found = issues(exc)
    assert len(found) == 3, found
    core, plugin, override = found
    assert core.startswith(f"file {path}:3: services.recording.segment_secnds: unknown key")
    assert "did you mean 'segment_seconds'" in core
    assert plugin.startswith(f"file {path}:5: patches.vidoe_sink: unknown key")
    assert "did you mean 'video_sink'" in plugin
    assert override.startswith("--set patches.metric_sink.enabeld: patches.metric_sink.enabeld: ")
    assert "did you mean 'enabled'" in override


def test_a_plugin_selection_error_stops_before_the_plugin_sections(tmp_path):
    """Which plugins load decides which sections exist: a broken ``plugins.*`` key is reported
    alone with the core's errors (the plugins' sections are checked once it is fixed)."""
    path = write(tmp_path, "c.yaml", "plugins:\n  only: 3\npatches:\n  vidoe_sink: false\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    (message,) = issues(exc)
    assert message.startswith(f"file {path}:2: plugins.only: ")


def test_wrong_types_all_reported(tmp_path):
    path = write(
        tmp_path,
        "c.json",
        json.dumps(
            {"strict": "yes", "platform": "tpu", "services": {"metrics": {"buffer_max": 0}}},
            indent=1,
        ),
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    found = issues(exc)
    assert len(found) == 3
    assert any("strict: expected true or false" in m for m in found)
    assert any("platform: expected one of auto, cpu, rknn, jetson" in m for m in found)
    assert any("buffer_max: must be >= 1" in m for m in found)


def test_yaml_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "c.yaml", "platform: cpu\npatches:\n  video_sink: [true\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    (message,) = issues(exc)
    assert message.startswith(f"{path}:") and "invalid YAML" in message


def test_json_syntax_error_has_line(tmp_path):
    path = write(tmp_path, "c.json", '{\n "platform": "cpu",\n}\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path, env={})
    assert issues(exc)[0].startswith(f"{path}:3: invalid JSON")


def test_top_level_must_be_mapping(tmp_path):
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "c.yaml", "- a\n- b\n"), env={})


def test_missing_file():
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_config("nope.yaml", env={})


def test_env_and_set_errors_name_their_source():
    with pytest.raises(ConfigError) as exc:
        load_config(
            env={"CORAL_PATCHES__VIDEO_SINK": "maybe", "CORAL_SERVICS__X": "1"},
            overrides=["services.metrics.storre=influxdb", "novalue"],
            strict=True,
        )
    found = issues(exc)
    assert any(
        "env CORAL_PATCHES__VIDEO_SINK: patches.video_sink: expected a mapping, got 'maybe'" in m
        for m in found
    )
    assert any("env CORAL_SERVICS__X: servics.x: unknown key" in m for m in found)
    assert any(
        m.startswith(
            "--set services.metrics.storre: services.metrics.storre: unknown key 'storre'; did you mean 'store'"
        )
        for m in found
    )
    assert any("expected KEY=VALUE" in m for m in found)


def test_models_is_an_open_map_and_plugin_sections_are_typed():
    pytest.importorskip("coral_inference_onnx", reason="declares backends.options.onnx")
    pytest.importorskip("coral_example_patch_frame_stamp", reason="the frame_stamp patch")
    config = load_config(
        env={},
        data={
            "patches": {"video_sink": False, "frame_stamp": {"enabled": False}},
            "models": {"faces": "./pkg"},
            "backends": {"options": {"onnx": {"intra_op_threads": 2}}},
        },
    )
    assert config.get("patches.video_sink.enabled") is False
    assert config.get("patches.frame_stamp.enabled") is False
    assert config.get("models.faces") == "./pkg"
    assert config.get("backends.options.onnx") == {
        "providers": ["CPUExecutionProvider"],
        "intra_op_threads": 2,
        "inter_op_threads": 0,
        "optimization": "all",
    }


def test_template_round_trips(tmp_path):
    path = write(tmp_path, "t.yaml", render_template())
    assert load_config(path, env={}).to_dict() == load_config(env={}).to_dict()


def test_readme_reference_matches_schema():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for key, kind, default, _ in reference_rows():
        assert f"| `{key}` | {kind} | {f'`{default}`' if default else ''} |" in readme, key


def test_unknown_coral_env_variables_are_a_warning_unless_strict(caplog):
    env = {"CORAL_SERVICS__X": "1", "CORAL_TOKEN_OF_ANOTHER_TOOL": "abc"}
    with caplog.at_level("WARNING"):
        config = load_config(env=env)
    assert config.get("strict") is False
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "CORAL_SERVICS__X" in warned and "CORAL_TOKEN_OF_ANOTHER_TOOL" in warned
    with pytest.raises(ConfigError, match="CORAL_TOKEN_OF_ANOTHER_TOOL"):
        load_config(env=env, strict=True)
    with pytest.raises(ConfigError, match="CORAL_SERVICS__X"):
        load_config(env=env, overrides=["strict=true"])
