"""``coral serve``'s token: generated, saved and printed once off loopback; bad token settings.

Not marked ``integration``: what it checks is coral's own settings logic, the same on every
inference line, so the tox env ``inference054`` runs it and the newest line's env does not pay
for it again.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from serve_process import TEST_ENV, ServeProcess

pytest.importorskip("inference")

pytestmark = pytest.mark.timeout(240)


def coral_serve(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "coral_inference.cli", "serve", *args],
        cwd=cwd,
        env={**TEST_ENV, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_off_loopback_without_a_token_one_is_generated_saved_and_printed_once(
    tmp_path: Path,
) -> None:
    first = ServeProcess("--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    try:
        (line,) = [line for line in first.stderr if "coral serve token" in line]
        token = line.rsplit(": ", 1)[1].strip()
        saved = tmp_path / "coral-output" / "serve-token"
        assert saved.read_text().strip() == token and len(token) >= 32
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
        assert first.request("GET", "/coral/pipelines")[0] == 401
        bearer = {"Authorization": f"Bearer {token}"}
        assert first.json("GET", "/coral/pipelines", headers=bearer)[0] == 200
    finally:
        first.stop()
    again = ServeProcess("--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    try:
        assert token not in again.log(lines=0)
        assert f"coral serve token: file {saved}" in again.log(lines=0)
        assert again.json("GET", "/coral/pipelines", headers=bearer)[0] == 200
    finally:
        again.stop()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--token", "sixteen-chars-ok", "--no-auth"), "not both"),
        (("--token", "short"), "has 5 characters: give at least 16"),
        (("--token-file", "/nonexistent/token"), "cannot read the token file /nonexistent/token"),
    ],
)
def test_bad_token_settings_are_one_line_errors(
    tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    result = coral_serve(*args, "--port", "0", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr
