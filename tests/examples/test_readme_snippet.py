"""The README's "Writing a plugin" example, installed exactly as written, then loaded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def readme_block(language: str, first_line: str) -> str:
    """The README's fenced ``language`` block whose first line starts with ``first_line``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


def test_the_readme_plugin_snippet_installs_and_loads(tmp_path: Path) -> None:
    project = tmp_path / "my-plugin"
    project.mkdir()
    (project / "my_plugin.py").write_text(readme_block("python", "# my_plugin.py"))
    (project / "pyproject.toml").write_text(readme_block("toml", "# pyproject.toml"))
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(project),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORAL_")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")])
    listed = subprocess.run(
        [sys.executable, "-m", "coral_inference.cli", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    (record,) = [r for r in json.loads(listed.stdout) if r["name"] == "quiet_warnings"]
    assert record["status"] == "loaded", record
    assert record["distribution"] == "my-coral-plugin"
    initialised = subprocess.run(
        [sys.executable, "-m", "coral_inference.cli", "init", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert initialised.returncode == 0, initialised.stderr
    patches = json.loads(initialised.stdout)["patches"]
    found = (
        patches["quiet_warnings"]
        if isinstance(patches, dict)
        else next(p for p in patches if p["name"] == "quiet_warnings")
    )
    assert found["status"] == "applied", found
