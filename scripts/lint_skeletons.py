"""Lint what ``coral plugins new`` writes: render every kind into a temporary directory and run
``ruff check`` and ``ruff format --check`` on it with this project's ruff settings (the lint
tox env runs this). Exit status: ruff's.

Two rules are left out because they depend on the name the user picks, not on the templates:
line length (E501) and import order (I001: the new package is first-party in its own project).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the lint env does not install the package

from coral_inference.app.scaffold import KINDS, create  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="coral-skeletons-") as directory:
        for kind in KINDS:
            create(f"lint-{kind}", kind, directory)
        config = ["--config", str(REPO / "pyproject.toml")]
        check = ["check", *config, "--extend-ignore", "E501,I001"]
        for command in (check, ["format", "--check", *config]):
            result = subprocess.run(["ruff", *command, directory], check=False)
            if result.returncode:
                print(f"the skeletons under coral_inference/app/skeletons fail ruff {command[0]}")
                return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
