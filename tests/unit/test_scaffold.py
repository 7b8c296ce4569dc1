"""``coral plugins new``: every kind of skeleton installs into a fresh virtual environment and
its own test passes there, unedited.

One new environment holds every kind of skeleton (installed with its ``test`` extra) and the ``plugins_examples``. It sees the test
environment's installed packages (the core under test, inference, onnxruntime, pytest) through a
``.pth`` file, so pip checks the skeletons' requirements against those instead of downloading
inference again: seconds instead of minutes, and it runs on every inference line of the matrix.
"""

from __future__ import annotations

import json
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

from coral_inference.app.scaffold import KINDS, ScaffoldError, create

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def _run(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{command}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def skeletons(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("skeletons")
    return {kind: create(f"my-{kind}", kind, root).root for kind in KINDS}


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory, skeletons) -> Path:
    """A new venv with the skeletons and examples, on top of this environment's packages."""
    env_dir = tmp_path_factory.mktemp("fresh-venv")
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env_dir)
    python = env_dir / "bin" / "python"
    own_site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], timeout=60
    ).stdout.strip()
    # addsitedir, not a bare path: the test env's own .pth files (editable installs) apply too
    here = sysconfig.get_path("purelib")
    Path(own_site, "test-env.pth").write_text(f"import site; site.addsitedir({here!r})\n")
    examples = sorted(p for p in (REPO / "plugins_examples").iterdir() if p.is_dir())
    pip = [str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
    projects = [f"{path}[test]" for path in skeletons.values()] + [str(p) for p in examples]
    _run([*pip, *projects], timeout=600)
    return python


def test_generated_files_are_filled_in(skeletons):
    for kind, root in skeletons.items():
        for path in root.rglob("*"):
            if path.is_file():
                text = path.read_text()
                assert "$" not in text.replace("$steps", "").replace("$inputs", ""), (kind, path)
        pyproject = (root / "pyproject.toml").read_text()
        assert pyproject.count("coral_inference.") == 1
        # inference's versions are declared where the runtime checks them, never installed
        assert '"inference' not in pyproject, (kind, pyproject)


def test_bad_name_kind_or_existing_directory_is_one_clear_error(tmp_path, coral):
    with pytest.raises(ScaffoldError, match="lower-case"):
        create("My Plugin", "patch", tmp_path)
    with pytest.raises(ScaffoldError, match="--kind 'chip'"):
        create("x", "chip", tmp_path)
    create("dup", "patch", tmp_path)
    result = coral("plugins", "new", "dup", "--kind", "patch", "--dir", str(tmp_path))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_skeleton_is_listed_loaded_and_its_test_passes(kind, skeletons, fresh_python):
    plugin = f"my_{kind}"
    listed = _run(
        [str(fresh_python), "-m", "coral_inference.cli", "plugins", "list", "--json"], timeout=120
    ).stdout
    (record,) = [r for r in json.loads(listed) if r["name"] == plugin]
    assert record["status"] == "loaded", record
    tests = skeletons[kind] / "tests"
    result = _run(
        [str(fresh_python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        timeout=300,
        cwd=skeletons[kind],
    )
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout


def test_sink_skeleton_prints_in_coral_run_without_verbose(skeletons, fresh_python, tmp_path):
    result = _run(
        [
            str(fresh_python),
            *("-m", "coral_inference.cli", "run", "--demo", "--max-frames", "40"),
            *(
                "--output-dir",
                str(tmp_path / "out"),
                "--set",
                "plugins.only=[onnx,local_models,frame_sinks,my_sink]",
            ),
        ],
        timeout=300,
        cwd=tmp_path,
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("my_sink: ")]
    assert [line.split(",")[0] for line in lines] == ["my_sink: 30 frames", "my_sink: 40 frames"]
    assert "frame sink my_sink: 40 frames, 0 dropped" in result.stdout


def test_examples_install_from_their_folders_and_load(fresh_python):
    listed = _run(
        [str(fresh_python), "-m", "coral_inference.cli", "plugins", "list", "--json"], timeout=120
    ).stdout
    records = {r["name"]: r for r in json.loads(listed)}
    for name in ("opencv_dnn", "detection_count", "frame_stamp", "line_counter"):
        assert records[name]["status"] == "loaded", records[name]
        assert records[name]["distribution"].startswith("coral-example-")


def test_cli_writes_the_skeleton(coral, tmp_path):
    result = coral("plugins", "new", "shelf-counter", "--kind", "workflow", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    root = tmp_path / "coral-shelf-counter"
    assert (root / "src" / "coral_shelf_counter" / "block.py").is_file()
    assert 'shelf_counter = "coral_shelf_counter.plugin"' in (root / "pyproject.toml").read_text()
