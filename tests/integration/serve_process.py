"""Run the real ``coral serve`` in a subprocess on a free loopback port, and talk HTTP to it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ADDRESS = re.compile(r"coral serve on (http://\S+/)")
TEST_ENV = {
    "DISABLE_VERSION_CHECK": "true",
    "TELEMETRY_OPT_OUT": "true",
    "METRICS_ENABLED": "false",
    "MODEL_VALIDATION_DISABLED": "true",
    # inference logs through rich, which wraps at the terminal's width: one record per line
    "COLUMNS": "1000",
}


def serve_assets(root: Path, frames: int) -> dict[str, Path]:
    """The sample package and a ``frames``-long 320x180 sample video under ``root``."""
    from coral_inference.models.sample import build_sample_package, generate_sample_video

    package = build_sample_package(root / "centerface").root
    video = root / "faces.mp4"
    generate_sample_video(video, frames=frames, size=(320, 180), fps=25)
    return {"root": root, "package": package, "video": video}


def serve_config(root: Path, package: Path, **serve: Any) -> Path:
    """A config file sending everything under ``root``; ``models.faces`` is ``package``."""
    config = {
        "plugins": {"disabled": [], "only": None},
        "models": {"faces": str(package)},
        "services": {
            "recording": {"dir": str(root / "recordings"), "segment_seconds": 2},
            "metrics": {"path": str(root / "metrics.db"), "flush_seconds": 0.2},
            "serve": {
                "state_path": str(root / "serve.db"),
                "grace_seconds": 10,
                # the test's files: sources and packages may be given by path from there
                "media_dirs": [str(root), str(package.parent)],
                "model_dirs": [str(root), str(package.parent)],
                **serve,
            },
            "stream_manager": {"health_check_seconds": 1},
        },
    }
    path = root / "coral.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class ServeProcess:
    """``coral serve ARGS`` started in ``cwd``; ``url`` once it printed its address."""

    # A generous start deadline: inference 1.x imports torch, and a loaded 2-core CI machine
    # took over 90 s to start a server (it answers as soon as it is up).
    def __init__(self, *args: str, cwd: Path, timeout: float = 300) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORAL_")}
        env.update(TEST_ENV)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "coral_inference.cli", "serve", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        threading.Thread(target=self._read, daemon=True).start()
        self._ready.wait(timeout)
        if not self.url:
            self.stop()
            raise RuntimeError("coral serve did not start:\n" + self.log())

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)
            found = ADDRESS.search(line)
            if found and not self.url:
                self.url = found.group(1)
                self._ready.set()
        self._ready.set()

    def log(self, lines: int = 60) -> str:
        """The last ``lines`` lines of its stderr (None: all)."""
        return "".join(self.stderr[-lines:] if lines else self.stderr)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> tuple[int, dict[str, str], bytes]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data,
            {"Content-Type": "application/json", **(headers or {})},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read()

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        status, _, payload = self.request(method, path, body, **kwargs)
        return status, json.loads(payload) if payload else None

    def wait_for(self, predicate: Any, timeout: float = 180, interval: float = 0.5) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting; server log:\n" + self.log())
            time.sleep(interval)

    def pipeline(self, pipeline_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        status, body = self.json("GET", f"/coral/pipelines/{pipeline_id}", headers=headers)
        assert status == 200, body
        return body

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
