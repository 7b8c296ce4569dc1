"""The ``coral_inference.testing`` pytest plugin (``pytest11`` entry point), used as an author
would: fixtures requested by name, no conftest import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import coral_inference
from coral_inference import hookimpl
from coral_inference.runtime import current
from coral_inference.runtime.patching import Patch
from coral_inference.runtime.plugins import PluginManager


class Greeter:
    @staticmethod
    def greet() -> str:
        return "original"


class GreetPatch(Patch):
    name = "testing_greet"
    targets = (f"{__name__}:Greeter.greet",)

    def install(self, patcher, targets, context):
        patcher.replace(Greeter, "greet", staticmethod(lambda: "patched"))


class GreetPlugin:
    @hookimpl
    def apply_patch(self, context):
        return context.apply(GreetPatch())


def test_runtime_is_isolated_with_outputs_in_a_temp_dir(coral_runtime, coral_output_dir):
    context = coral_runtime({"plugins": {"only": ["buffer_sink"]}})
    assert current() is context
    assert context.platform == "cpu"
    assert context.config.get("services.metrics.path") == str(coral_output_dir / "metrics.db")
    assert str(coral_output_dir) in context.config.get("services.recording.dir")
    assert [p.name for p in context.plugins if p.status == "loaded"] == ["buffer_sink"]


def test_registered_object_is_discovered_gated_and_applied(coral_plugins, coral_runtime):
    coral_plugins.register(GreetPlugin(), "testing_greet")
    coral_plugins.register(GreetPlugin(), "testing_future", requires=["coral-inference>=99"])
    records = {r.name: r for r in PluginManager().discover(load=False)}
    assert records["testing_greet"].distribution == "coral-test-testing_greet"
    assert records["testing_future"].status == "incompatible"
    context = coral_runtime({"plugins": {"only": ["testing_greet", "testing_future"]}})
    assert context.is_patch_enabled("testing_greet") and Greeter.greet() == "patched"
    coral_inference.shutdown()
    assert Greeter.greet() == "original"


def test_closed_plugins_are_gone(tmp_path):
    from coral_inference.testing.plugins import TemporaryPlugins

    plugins = TemporaryPlugins(tmp_path)
    plugins.register(GreetPlugin(), "testing_gone")
    assert "testing_gone" in {r.name for r in PluginManager().discover(load=False)}
    plugins.close()
    assert "testing_gone" not in {r.name for r in PluginManager().discover(load=False)}


def test_install_from_a_path(coral_plugins, coral_runtime, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=68"]
            build-backend = "setuptools.build_meta"
            [project]
            name = "coral-testing-installed"
            version = "2.0"
            dependencies = ["coral-inference>=0.1"]
            [project.entry-points."coral_inference.workflows"]
            testing_installed = "coral_testing_installed"
            [tool.setuptools]
            py-modules = ["coral_testing_installed"]
            """
        )
    )
    (project / "coral_testing_installed.py").write_text(
        "from coral_inference import hookimpl\n"
        "STARTED = []\n"
        "@hookimpl\n"
        "def runtime_started(context):\n"
        "    STARTED.append(context.platform)\n"
    )
    coral_plugins.install(project)
    context = coral_runtime({"plugins": {"only": ["testing_installed"]}})
    (record,) = [p for p in context.plugins if p.name == "testing_installed"]
    assert (record.status, record.version, record.requires) == (
        "loaded",
        "2.0",
        ["coral-inference>=0.1"],
    )
    assert sys.modules["coral_testing_installed"].STARTED == ["cpu"]


def test_assert_patch_reverts(coral_assert_patch_reverts):
    record = coral_assert_patch_reverts(GreetPatch())
    assert record.status == "applied"
    assert Greeter.__dict__["greet"] is vars(Greeter)["greet"] and Greeter.greet() == "original"

    class Leaky(GreetPatch):
        name = "testing_leaky"

        def install(self, patcher, targets, context):
            pass  # changes nothing: the helper must say so

    with pytest.raises(AssertionError, match="changed none of"):
        coral_assert_patch_reverts(Leaky())


def test_sample_model_and_frames(coral_sample_model, coral_sample_frames, coral_sample_video):
    manifest = json.loads((coral_sample_model / "model.json").read_text())
    assert manifest["name"] == "centerface"
    assert len(coral_sample_frames) == 30
    assert coral_sample_frames[0].shape == (240, 320, 3)
    truth = json.loads(coral_sample_video.with_suffix(".json").read_text())
    assert len(truth["frames"]) == 30


def test_the_pytest_plugin_imports_nothing_heavy(tmp_path):
    (tmp_path / "test_probe.py").write_text(
        "import sys\n"
        "def test_probe():\n"
        "    heavy = {'numpy', 'inference', 'cv2', 'onnxruntime', 'coral_inference.runtime.plugins'}\n"
        "    assert 'coral_inference.testing.pytest_plugin' in sys.modules\n"
        "    assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
