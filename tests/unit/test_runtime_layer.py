"""The runtime layer as a new user meets it: typed plugin options, decoders per runtime, the
hook options pluggy offers, and the package rule that only ``runtime/`` may touch private names.

Each test here failed on the code before ``coral_inference.runtime`` existed.
"""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

import pytest

import coral_inference
from coral_inference.runtime.config import ConfigError, load_config
from coral_inference.runtime.plugins import PluginManager
from coral_inference.runtime.records import PluginStatus

PACKAGE = Path(coral_inference.__file__).parent


def test_misspelt_patch_name_is_an_error_with_did_you_mean(coral, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("patches:\n  vidoe_sink: true\n")
    for command in (["config", "validate"], ["init"]):
        result = coral(*command, "-c", str(config))
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"file {config}:2: patches.vidoe_sink: unknown key 'vidoe_sink'" in result.stderr
        assert "did you mean 'video_sink'?" in result.stderr
        assert "Traceback" not in result.stderr


def test_patch_names_come_from_metadata_without_importing_inference(python_code):
    code = textwrap.dedent(
        """
        import sys
        from coral_inference.runtime.config import ConfigError, load_config
        try:
            load_config(env={}, data={"patches": {"frame_stamps": False}})
        except ConfigError as exc:
            print(exc)
        print("inference" in sys.modules)
        """
    )
    result = python_code(code)
    assert "did you mean 'frame_stamp'?" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_influxdb_without_url_fails_validation_naming_key_and_source(coral):
    result = coral("config", "validate", "--set", "services.metrics.store=influxdb")
    assert result.returncode == 2
    assert "--set services.metrics.store: services.metrics.url: store is influxdb" in result.stderr


def test_backend_options_typed_from_set_and_env(coral):
    shown = coral("config", "show", "--json", "--set", "backends.options.onnx.providers=auto")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["config"]["backends"]["options"]["onnx"]["providers"] == [
        "auto"
    ]
    via_env = coral(
        "config", "show", "--json", env={"CORAL_BACKENDS__OPTIONS__ONNX__PROVIDERS": "auto"}
    )
    data = json.loads(via_env.stdout)
    assert data["config"]["backends"]["options"]["onnx"]["providers"] == ["auto"]
    assert (
        data["sources"]["backends.options.onnx.providers"]
        == "env CORAL_BACKENDS__OPTIONS__ONNX__PROVIDERS"
    )
    typo = coral("config", "validate", "--set", "backends.options.onnx.provders=auto")
    assert typo.returncode == 2
    assert "backends.options.onnx.provders: unknown key 'provders'" in typo.stderr
    assert "did you mean 'providers'?" in typo.stderr
    threads = coral("config", "validate", "--set", "backends.options.onnx.intra_op_threads=-1")
    assert threads.returncode == 2 and "must be >= 0" in threads.stderr


def test_unknown_backend_in_options_is_an_error():
    with pytest.raises(ConfigError, match=r"backends.options.onxx: unknown key 'onxx'; did you"):
        load_config(env={}, data={"backends": {"options": {"onxx": {}}}})


def test_plugin_declared_service_section_is_typed_and_in_the_template(coral):
    ok = load_config(env={}, overrides=["services.fixture_decoders.interval=2.5"])
    assert ok.get("services.fixture_decoders") == {"interval": 2.5, "label": "tick"}
    with pytest.raises(ConfigError, match="services.fixture_decoders.interval: must be >= 0"):
        load_config(env={}, overrides=["services.fixture_decoders.interval=-1"])
    template = coral("config", "init").stdout
    assert "fixture_decoders:" in template and "interval: 1.0  # seconds between ticks" in template


def test_config_show_prints_yaml_values(coral):
    shown = coral("config", "show", "--set", "plugins.only=null")
    rows = {line.split()[0]: line.split()[1] for line in shown.stdout.splitlines()[1:]}
    assert rows["strict"] == "false" and rows["plugins.only"] == "null"
    assert rows["patches.video_sink.enabled"] == "true"
    assert "True" not in shown.stdout and "None" not in shown.stdout


def test_init_shutdown_init_with_a_decoder_plugin_and_a_clash_is_a_record():
    only = {"plugins": {"only": ["fixture_decoders", "fixture_decoders_clash"]}}
    for _ in range(2):
        context = coral_inference.init(only)
        assert "fixture_boxes" in context.decoders.names()
        records = {r.name: r for r in context.plugins}
        assert records["fixture_decoders"].status is PluginStatus.LOADED
        clash = records["fixture_decoders_clash"]
        assert clash.status is PluginStatus.FAILED and "already registered" in clash.reason
        coral_inference.shutdown()
    assert "fixture_boxes" not in coral_inference.models.available_decoders()


def test_models_commands_see_plugin_decoders(coral, tmp_path):
    from coral_inference.models.sample import build_sample_package

    package = build_sample_package(tmp_path / "pkg")
    out = tmp_path / "imported"
    result = coral(
        "models",
        "import-onnx",
        str(package.weights_path("onnx")),
        str(out),
        "--name",
        "boxes",
        "--decoder",
        "fixture_boxes",
        "--classes",
        "face",
    )
    assert result.returncode == 0, result.stderr
    inspected = coral("models", "inspect", str(out), "--json")
    assert json.loads(inspected.stdout)["manifest"]["decoder"]["type"] == "fixture_boxes"


def _plugin_module(tmp_path, monkeypatch, name, body):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_tryfirst_and_trylast_order_the_calls(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("builtins.coral_test_calls", calls, raising=False)
    bodies = {
        "aa_last": "@hookimpl(trylast=True)\ndef runtime_started(context):\n    calls.append('last')\n",
        "bb_plain": "@hookimpl\ndef runtime_started(context):\n    calls.append('plain')\n",
        "cc_first": "@hookimpl(tryfirst=True)\ndef runtime_started(context):\n    calls.append('first')\n",
    }
    manager = PluginManager()
    for name, body in bodies.items():
        header = (
            "from coral_inference import hookimpl\nfrom builtins import coral_test_calls as calls\n"
        )
        manager.register_path(_plugin_module(tmp_path, monkeypatch, name, header + body))
    manager.runtime_started(None)  # type: ignore[arg-type]
    assert calls == ["first", "plain", "last"]


def test_hookwrapper_is_refused_with_the_reason(tmp_path, monkeypatch):
    body = """
    from coral_inference import hookimpl

    @hookimpl(wrapper=True)
    def runtime_stopping(context):
        return (yield)
    """
    manager = PluginManager()
    record = manager.register_path(_plugin_module(tmp_path, monkeypatch, "wrapping", body))
    assert record.status is PluginStatus.INVALID
    assert "runtime_stopping: hookwrapper/wrapper implementations are not supported" in (
        record.reason
    )


def private_imports(root: Path) -> list[str]:
    """``from coral_inference... import _name`` and ``module._name`` uses of project modules,
    outside ``runtime/`` (the check the closing note names)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if "runtime" in path.relative_to(root).parts[:1]:
            continue
        tree = ast.parse(path.read_text(), str(path))
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "coral_inference"
            ):
                for alias in node.names:
                    if alias.name.startswith("_"):
                        found.append(f"{path}:{node.lineno}: imports {alias.name}")
                    modules.add(alias.asname or alias.name)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{path}:{node.lineno}: uses {node.value.id}.{node.attr}")
    return found


def test_nothing_outside_runtime_reaches_into_private_names():
    assert private_imports(PACKAGE) == []
