"""Plugins written as the original publishing guide shows (``PluginSpec`` factories).

``tests/plugins/guide_*`` are installed distributions, packaged with poetry exactly as the guide
does (``[tool.poetry.plugins."coral_inference.patches"]``); the other tests load factories from a
module written to ``tmp_path``.
"""

from __future__ import annotations

import json
import sys

import pytest

import coral_inference
from coral_inference.runtime.plugins import PluginFilter, PluginManager, PluginSpec

GUIDE = {
    "camera_stabilizer": ("patches", "loaded", "", "Improve camera stream stability"),
    "custom_block": ("workflows", "loaded", "", "A custom workflow block"),
    "guide_future_core": (
        "patches",
        "incompatible",
        "needs coral-inference>=99.0, installed coral-inference is 0.1.0 "
        "(PluginSpec 'guide_future_core' minimum)",
        "Needs a coral-inference from the future",
    ),
}


@pytest.fixture(scope="module", autouse=True)
def _guide_fixtures_installed():
    names = {r.name for r in PluginManager().discover(load=False)}
    missing = {*GUIDE, "guide_activate_false"} - names
    assert not missing, f"guide fixture plugins not installed: {missing}; run through tox"


@pytest.fixture(autouse=True)
def _shutdown():
    yield
    coral_inference.shutdown()


def test_guide_plugins_are_listed_with_description_and_requirements(coral):
    result = coral("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    for name, (group, status, reason, description) in GUIDE.items():
        record = records[name]
        assert (record["group"], record["status"], record["description"]) == (
            group,
            status,
            description,
        ), record
        assert reason in record["reason"]
        assert "inference>=0.9.0" in record["requires"]
    assert records["camera_stabilizer"]["requires"] == [
        "coral-inference>=0.0.4",
        "inference>=0.9.0",
    ]
    assert records["camera_stabilizer"]["hooks"] == ["apply_patch"]
    assert records["custom_block"]["hooks"] == ["runtime_started"]
    # Listing calls the factory, never activate: the one returning False still reads loaded.
    assert records["guide_activate_false"]["status"] == "loaded"

    text = coral("plugins", "list", "--group", "patches", env={})
    lines = {line.split()[0]: line for line in text.stdout.splitlines()[1:]}
    assert "custom_block" not in lines
    assert "coral-inference>=0.0.4,inference>=0.9.0" in lines["camera_stabilizer"]
    assert "Improve camera stream stability" in lines["camera_stabilizer"]


def test_coral_runtime_name_lists_patches_like_the_guide(tmp_path):
    import subprocess
    from pathlib import Path

    script = Path(sys.executable).with_name("coral-runtime")
    assert script.is_file(), f"{script}: the coral-runtime console script is not installed"
    result = subprocess.run(
        [str(script), "plugins", "list", "--group", "patches"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "Improve camera stream stability" in rows["camera_stabilizer"]
    assert "custom_block" not in rows


def test_init_activates_and_reports_under_the_guides_names(coral):
    result = coral("init", "--json")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    plugins = {p["name"]: p for p in state["plugins"]}
    assert plugins["camera_stabilizer"]["status"] == "loaded"
    assert plugins["guide_activate_false"]["status"] == "failed"
    assert plugins["guide_activate_false"]["reason"].startswith("activate(config) returned False")
    assert state["patches"]["camera_stabilizer"]["status"] == "applied"
    assert state["patches"]["guide_activate_false"]["status"] == "failed"
    assert state["plugins_loaded"]["camera_stabilizer"] is True
    assert state["plugins_loaded"]["custom_block"] is True
    assert state["plugins_loaded"]["guide_activate_false"] is False
    assert state["plugins_loaded"]["guide_future_core"] is False
    assert state["patches_enabled"]["camera_stabilizer"] is True
    assert state["patches_enabled"]["guide_activate_false"] is False
    assert state["backends_enabled"]["onnx"] is True


def test_set_patches_name_switches_a_guide_patch(coral):
    off = coral("init", "--json", "--set", "patches.camera_stabilizer=false")
    state = json.loads(off.stdout)
    assert state["patches"]["camera_stabilizer"]["status"] == "disabled"
    assert state["patches_enabled"]["camera_stabilizer"] is False
    on = coral("init", "--json", "--set", "patches.camera_stabilizer=true")
    assert json.loads(on.stdout)["patches_enabled"]["camera_stabilizer"] is True


def test_strict_fails_on_activate_false_until_it_is_disabled_by_its_listed_name(coral):
    state = json.loads(coral("init", "--json").stdout)
    others = [
        p["name"]
        for p in state["plugins"]
        if p["status"] in ("incompatible", "failed", "invalid")
        and p["name"] != "guide_activate_false"
    ]
    failing = coral("init", "--strict", env={"CORAL_PLUGINS__DISABLED": ",".join(others)})
    assert failing.returncode == 1
    assert "2 problem(s)" in failing.stderr  # the plugin and its patch
    assert "guide_activate_false" in failing.stdout
    assert "activate(config) returned False" in failing.stdout
    assert "Traceback" not in failing.stderr
    everything = ",".join([*others, "guide_activate_false"])
    passing = coral("init", "--strict", env={"CORAL_PLUGINS__DISABLED": everything})
    assert passing.returncode == 0, passing.stdout + passing.stderr


def test_activate_receives_the_runtime_config():
    from coral_fixture_guide_stabilizer import workflow_plugins

    workflow_plugins.ACTIVATIONS.clear()
    context = coral_inference.init(
        {"platform": "cpu", "plugins": {"only": ["custom_block", "camera_stabilizer"]}}
    )
    assert [config.get("platform") for config in workflow_plugins.ACTIVATIONS] == ["cpu"]
    assert workflow_plugins.ACTIVATIONS[0] is context.config
    assert context.is_patch_enabled("camera_stabilizer")


# -- factories that go wrong, loaded from a module on sys.path -----------------------------------

FACTORIES = """
from coral_inference.runtime.plugins import PluginSpec

def raises_in_factory():
    raise ValueError("no spec today")

def not_a_spec():
    return {"name": "x"}

def activate_raises():
    def activate(config):
        raise OSError("camera busy")
    return PluginSpec(name="activate_raises", activate=activate)

def old_inference():
    return PluginSpec(name="old_inference", activate=lambda c: True, min_inference_version="999")

def returns_none():
    return PluginSpec(name="returns_none", activate=lambda c: None, description="None is fine")

SPEC = PluginSpec(name="direct", activate=lambda c: True)
"""


@pytest.fixture
def factories(tmp_path, monkeypatch):
    (tmp_path / "coral_spec_factories.py").write_text(FACTORIES)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "coral_spec_factories"
    sys.modules.pop("coral_spec_factories", None)


def _load(module: str, attr: str, group: str = "patches"):
    manager = PluginManager(PluginFilter())
    return manager, manager.register_path(f"{module}:{attr}", group=group)


def test_factory_errors_are_recorded_per_plugin(factories):
    _, raised = _load(factories, "raises_in_factory")
    assert raised.status == "failed"
    assert "raised ValueError: no spec today" in raised.reason
    _, wrong = _load(factories, "not_a_spec")
    assert wrong.status == "invalid" and "returning {'name': 'x'}" in wrong.reason
    _, old = _load(factories, "old_inference")
    assert old.status == "incompatible"
    assert "needs inference>=999" in old.reason and old.requires == ["inference>=999"]
    _, direct = _load(factories, "SPEC")
    assert direct.status == "loaded" and direct.hooks == ["apply_patch"]


def test_activate_raising_marks_the_plugin_failed(factories):
    from coral_inference.runtime import compat
    from coral_inference.runtime.config import load_config
    from coral_inference.runtime.patching import PatchContext

    manager, record = _load(factories, "activate_raises")
    context = PatchContext(load_config(data={}, env={}), compat.installed_inference(), "cpu")
    (patch,) = manager.apply_patches(context)
    assert patch.status == "failed"
    assert record.status == "failed"
    assert record.reason.startswith("activate(config) raised OSError: camera busy")

    manager, record = _load(factories, "returns_none", group="workflows")
    manager.runtime_started(type("Ctx", (), {"config": context.config})())
    assert record.status == "loaded" and record.description == "None is fine"


def test_default_config_overrides_become_typed_options():
    spec = PluginSpec(
        name="stabilizer",
        activate=lambda config: True,
        default_config_overrides={"strength": 0.5, "frames": 4, "mode": "fast", "on": True},
    )
    section = spec.options_section("patches.stabilizer")
    assert {key: option.kind for key, option in section.keys.items()} == {
        "strength": "float",
        "frames": "int",
        "mode": "str",
        "on": "bool",
    }
    assert section.keys["strength"].default == 0.5
    with pytest.raises(TypeError, match=r"patches.stabilizer.bad"):
        PluginSpec("s", lambda c: True, default_config_overrides={"bad": object()}).options_section(
            "patches.stabilizer"
        )


def test_default_config_overrides_are_checked_config_keys(coral_plugins, coral_runtime):
    from coral_inference.runtime.config import ConfigError

    seen = []

    def factory():
        return PluginSpec(
            name="tuned",
            activate=lambda config: seen.append(config.get("patches.tuned.strength")) or True,
            default_config_overrides={"strength": 0.5, "mode": "fast"},
        )

    coral_plugins.register(factory, "tuned", group="patches")
    context = coral_runtime({"plugins": {"only": ["tuned"]}})
    (record,) = [p for p in context.plugins if p.name == "tuned"]
    assert record.hooks == ["apply_patch", "declare_options"]
    assert context.is_patch_enabled("tuned") and seen == [0.5]  # the default
    assert context.config.get("patches.tuned.mode") == "fast"
    coral_inference.shutdown()
    coral_runtime({"plugins": {"only": ["tuned"]}, "patches": {"tuned": {"strength": 0.75}}})
    assert seen == [0.5, 0.75]
    coral_inference.shutdown()
    with pytest.raises(ConfigError, match=r"patches\.tuned\.strength"):
        coral_runtime({"plugins": {"only": ["tuned"]}, "patches": {"tuned": {"strength": "lots"}}})
    with pytest.raises(ConfigError, match=r"patches\.tuned\.strenght"):
        coral_runtime({"plugins": {"only": ["tuned"]}, "patches": {"tuned": {"strenght": 1.0}}})
