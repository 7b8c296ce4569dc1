"""The plugin host as a user meets it: fixture plugin distributions installed in this env."""

import json
import subprocess
import sys

import pytest

from coral_inference.runtime.plugins import PluginManager

FIXTURES = {
    "fixture_good": ("loaded", ""),
    "fixture_future_core": ("incompatible", "needs coral-inference>=99"),
    "fixture_old_inference": ("incompatible", "needs inference-cpu<0.1"),
    "fixture_import_error": (
        "failed",
        "No module named 'coral_fixture_module_that_does_not_exist'",
    ),
    "fixture_misspelt": ("invalid", "unknown hook 'register_workflow_blocks'"),
    "fixture_bad_argument": ("invalid", "{'device_index'} are declared in the hookimpl"),
    "fixture_decoders": ("loaded", ""),
    "fixture_wrapper": (
        "invalid",
        "runtime_started: hookwrapper/wrapper implementations are not supported",
    ),
}
#: Plugins that load but fail inside a hook at init.
FAIL_AT_INIT = ("fixture_hook_raises", "fixture_decoders_clash")
#: The original guide's PluginSpec fixtures that are not loadable (tests/unit/test_plugin_spec.py).
GUIDE_BROKEN = ("guide_future_core", "guide_activate_false")
BROKEN = ",".join(
    n
    for n in [*FIXTURES, *FAIL_AT_INIT, *GUIDE_BROKEN]
    if FIXTURES.get(n, ("failed",))[0] != "loaded"
)


@pytest.fixture(scope="module", autouse=True)
def _fixtures_installed():
    names = {r.name for r in PluginManager().discover(load=False)}
    missing = set(FIXTURES) - names
    assert not missing, f"fixture plugins not installed: {missing}; run the suite through tox"


def test_plugins_list_json_reports_every_status(coral):
    result = coral("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    records = {r["name"]: r for r in json.loads(result.stdout)}
    for name, (status, reason) in FIXTURES.items():
        assert records[name]["status"] == status, records[name]
        assert reason in records[name]["reason"]
        assert records[name]["distribution"].startswith("coral-fixture-")
    assert records["fixture_good"]["hooks"] == ["apply_patch", "register_commands"]
    assert records["fixture_future_core"]["requires"] == ["coral-inference>=99"]
    assert records["fixture_hook_raises"]["status"] == "loaded"  # hooks only run at init
    assert "Traceback" not in result.stderr


def test_plugins_list_text_and_group(coral):
    result = coral("plugins", "list", "--group", "workflows")
    assert result.returncode == 0
    assert "fixture_misspelt" in result.stdout and "fixture_good" not in result.stdout
    assert result.stdout.splitlines()[0].split() == [
        "NAME",
        "GROUP",
        "DISTRIBUTION",
        "STATUS",
        "HOOKS",
        "REQUIRES",
        "DESCRIPTION",
        "REASON",
    ]


def test_descriptions_come_from_the_plugin_module_docstring(coral):
    result = coral("plugins", "list", "--json")
    assert result.returncode == 0, result.stderr
    described = {r["name"]: r["description"] for r in json.loads(result.stdout)}
    assert described["video_sink"].startswith("Patch video_sink: annotated, segmented recording")
    assert described["onnx"].startswith("ONNX Runtime backend")
    # an object plugin of a built-in type has no description of its own
    assert described["fixture_wrapper"] == ""


def test_incompatible_plugins_are_never_imported():
    code = (
        "import sys; from coral_inference.runtime.plugins import PluginManager; "
        "m = PluginManager(); m.discover(); "
        "print(sorted(n for n in sys.modules if n.startswith('coral_fixture_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported = eval(out.stdout)
    assert "coral_fixture_future_core" not in imported
    assert "coral_fixture_old_inference" not in imported
    assert "coral_fixture_good" in imported


def test_plugins_list_imports_no_heavy_runtime():
    code = (
        "import sys; from coral_inference.cli import cli\n"
        "try: cli(['plugins', 'list', '--json'])\nexcept SystemExit: pass\n"
        "heavy = {'inference', 'onnxruntime', 'torch', 'cv2', 'numpy'}\n"
        "print(sorted({n.split('.')[0] for n in sys.modules} & heavy), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_init_reports_hook_failure_and_strict_exits_nonzero(coral):
    result = coral("init", "--json")
    assert result.returncode == 0, result.stderr
    state = json.loads(result.stdout)
    plugins = {p["name"]: p for p in state["plugins"]}
    assert plugins["fixture_hook_raises"]["status"] == "failed"
    assert (
        "hook register_backend raised RuntimeError: fixture backend exploded"
        in plugins["fixture_hook_raises"]["reason"]
    )
    assert state["patches"]["fixture_greet"]["status"] == "applied"
    assert plugins["fixture_decoders_clash"]["status"] == "failed"
    assert (
        "register_decoder: decoder 'fixture_boxes' is already registered by "
        "coral_inference.models.decoders.decode_yolov8"
    ) in plugins["fixture_decoders_clash"]["reason"]
    assert "fixture_boxes" in state["decoders"]
    # + the original guide's: one incompatible, one failed (the plugin and its patch)
    assert len(state["problems"]) == 11
    strict = coral("init", "--strict")
    assert strict.returncode == 1 and "11 problem(s)" in strict.stderr
    assert "Traceback" not in strict.stderr
    via_config = coral("init", "--set", "strict=true")
    assert via_config.returncode == 1


def test_disabling_broken_plugins_by_listed_name_makes_strict_pass(coral, tmp_path):
    ok = coral("init", "--strict", env={"CORAL_PLUGINS__DISABLED": BROKEN})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    config = tmp_path / "c.yaml"
    config.write_text("plugins:\n  disabled: [" + BROKEN + "]\nstrict: true\n")
    assert coral("init", "-c", str(config)).returncode == 0
    allow = coral("init", "--strict", "--set", "plugins.only=[fixture_good]", "--json")
    assert allow.returncode == 0
    statuses = {p["name"]: p["status"] for p in json.loads(allow.stdout)["plugins"]}
    assert statuses["fixture_good"] == "loaded"
    assert statuses["fixture_import_error"] == "disabled"


def test_plugin_command_is_added(coral):
    result = coral("fixture-hello")
    assert result.returncode == 0 and result.stdout.strip() == "hello from coral-fixture-good"
    assert "fixture-hello" in coral("--help").stdout


def test_bad_config_is_one_clear_error(coral, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("platform: cpu\nservices:\n  recording:\n    segment_secs: 5\n")
    for args in (
        ("config", "validate", "-c", str(bad)),
        ("init", "-c", str(bad)),
        ("plugins", "list", "-c", str(bad)),
    ):
        result = coral(*args)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert f"{bad}:4: services.recording.segment_secs: unknown key" in result.stderr
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("platform: [cpu\n")
    result = coral("config", "validate", "-c", str(garbage))
    assert (
        result.returncode == 2
        and "invalid YAML" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_config_show_and_init(coral, tmp_path):
    out = tmp_path / "coral.yaml"
    assert coral("config", "init", "-o", str(out)).returncode == 0
    assert coral("config", "init", "-o", str(out)).returncode != 0  # no silent overwrite
    assert coral("config", "validate", "-c", str(out)).returncode == 0
    shown = coral(
        "config",
        "show",
        "-c",
        str(out),
        "--set",
        "platform=cpu",
        "--json",
        env={
            "CORAL_SERVICES__METRICS__STORE": "influxdb",
            "CORAL_SERVICES__METRICS__URL": "http://127.0.0.1:8086",
        },
    )
    data = json.loads(shown.stdout)
    assert data["config"]["platform"] == "cpu"
    assert data["sources"]["platform"] == "--set platform"
    assert data["sources"]["services.metrics.store"] == "env CORAL_SERVICES__METRICS__STORE"
    assert data["sources"]["strict"].startswith(f"file {out}:")


def test_doctor(coral):
    result = coral("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["inference"]["version"] != "not installed"
    assert report["system"]["platform"].startswith("cpu")
    assert any("fixture_import_error" in step for step in report["next_steps"])
