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


class CountingSink:
    def __init__(self, pipeline):
        self.pipeline_id = pipeline.pipeline_id
        self.frame_ids = []
        self.shapes = set()
        self.closed = False

    def on_frame(self, result):
        self.frame_ids.append(result.frame_id)
        self.shapes.add(None if result.image is None else result.image.shape)

    def close(self):
        self.closed = True


def test_frame_sink_run_feeds_every_frame_of_the_sample_video(coral_frame_sink_run):
    sinks = []
    run = coral_frame_sink_run(lambda pipeline: sinks.append(CountingSink(pipeline)) or sinks[-1])
    [sink] = sinks
    assert run.frames == 30 and sink.closed
    assert sink.frame_ids == list(range(1, 31))
    assert sink.shapes == {None}  # no image unless asked for
    assert run.counts == {"frames": 30, "dropped": 0, "failed": 0, "pending": 0}
    assert not any("sink_under_test" in problem for problem in run.context.problems())


def test_frame_sink_run_gives_the_image_on_request(coral_frame_sink_run):
    sinks = []
    run = coral_frame_sink_run(
        lambda pipeline: sinks.append(CountingSink(pipeline)) or sinks[-1], with_image=True
    )
    assert sinks[0].shapes == {(240, 320, 3)} and run.counts["frames"] == 30


class BadRegistrations:
    def __init__(self, **options):
        self.options = options

    @hookimpl
    def register_frame_sinks(self, register):
        register(CountingSink, **self.options)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"queue_size": 0}, "queue_size must be an int >= 1, got 0"),
        ({"with_image": "yes"}, "with_image must be True or False, got 'yes'"),
        ({"colour": True}, "unexpected keyword argument 'colour'"),
    ],
)
def test_a_bad_frame_sink_registration_fails_its_plugin_only(
    coral_plugins, coral_runtime, options, reason
):
    coral_plugins.register(BadRegistrations(**options), "bad_sink", group="patches")
    context = coral_runtime()
    [record] = [r for r in context.plugins if r.name == "bad_sink"]
    assert record.status == "failed" and "hook register_frame_sinks raised" in record.reason
    assert reason in record.reason
    assert context.services.frame_sinks.registrations == []
    assert context.is_patch_enabled("frame_sinks")


def test_the_guides_frame_sink_example_runs(coral_frame_sink_run, capsys):
    """docs/plugins.md's example, as written, over the sample video."""
    import re
    from pathlib import Path

    guide = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    section = guide[guide.index("## Frame sinks") :]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(example, "docs/plugins.md", "exec"), namespace)
    run = coral_frame_sink_run(namespace["ShelfCounter"])
    assert run.counts["frames"] == run.frames == 30
    assert re.search(r"pipeline-\d+: \d+ detections", capsys.readouterr().out)
