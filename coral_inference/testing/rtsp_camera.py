"""A real RTSP camera that tests and benchmarks start, stop and start again on one loopback
port.

The server is :mod:`rtsp_camera_server` (GStreamer's RTSP server, run by the system
``python3`` with Debian's ``python3-gi`` and ``gir1.2-gst-rtsp-server-1.0``; ``scripts/test.sh``
installs them). Tests using it skip, saying why (:func:`missing_reason`), where those are
missing.
"""

from __future__ import annotations

import select
import subprocess
from pathlib import Path

from coral_inference.testing.influxdb import free_port
from coral_inference.testing.processes import stop_process

SERVER = Path(__file__).with_name("rtsp_camera_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"
PROBE = (
    "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
    "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
    "missing = [e for e in ('videotestsrc', 'x264enc', 'rtph264pay') "
    "if not Gst.ElementFactory.find(e)]; "
    "assert not missing, f'GStreamer elements missing: {missing}'"
)


def missing_reason() -> str | None:
    """Why no camera can run here, or None."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return (
            f"GStreamer's RTSP server is not usable by {SYSTEM_PYTHON} ({last}): apt-get install "
            "gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-{base,good,ugly}"
        )
    return None


class RTSPCamera:
    """``rtsp://127.0.0.1:PORT/camera``: a moving test pattern, live H.264 at ``fps``."""

    def __init__(self, log_dir: Path, size: str = "320x240", fps: int = 15) -> None:
        self.port = free_port()
        self.size = size
        self.fps = fps
        self.log_dir = log_dir
        self.process: subprocess.Popen[str] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/camera"

    def start(self, timeout: float = 60) -> None:
        """Start serving (again, on the same port); returns once the server listens."""
        assert self.process is None, "already running"
        self.starts += 1
        log = (self.log_dir / f"camera-{self.starts}.log").open("w")
        command = [SYSTEM_PYTHON, str(SERVER), str(self.port), "/camera", self.size, str(self.fps)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        assert self.process.stdout is not None
        readable, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if readable else ""  # "ready PORT", "" if it died
        if not line.startswith("ready"):
            self.stop()
            raise AssertionError(f"RTSP camera did not start: {line!r}; see {log.name}")

    def stop(self, timeout: float = 30) -> None:
        """Stop serving: open connections drop, as when a camera loses power."""
        if self.process is None:
            return
        stop_process(self.process, timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
