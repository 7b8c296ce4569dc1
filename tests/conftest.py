"""Shared fixtures: run the real ``coral`` CLI in a subprocess, with a clean CORAL_* env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORAL_")}
    env.update(extra)
    return env


@pytest.fixture
def coral(tmp_path):
    """Run ``coral ARGS`` as a user would; returns the CompletedProcess."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd=None):
        return subprocess.run(
            [sys.executable, "-m", "coral_inference.cli", *args],
            capture_output=True,
            text=True,
            env=clean_env(**(env or {})),
            timeout=timeout,
            cwd=cwd or tmp_path,
            stdin=subprocess.DEVNULL,
        )

    return run


@pytest.fixture
def python_code(tmp_path):
    """Run ``python -c CODE`` in a fresh interpreter with a clean CORAL_* env."""

    def run(code: str, timeout: float = 120):
        return subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=timeout,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            check=True,
        )

    return run


@pytest.fixture(autouse=True)
def _no_coral_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("CORAL_"):
            monkeypatch.delenv(name)
