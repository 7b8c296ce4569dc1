"""Live RTSP cameras into ``coral run``: capture-to-result latency against the model's own time,
and several cameras in one run against one camera alone.

Run: ``python benchmarks/live_cameras.py [--cameras 4] [--size 1280x720] [--max-fps 5]
[--seconds 8] [--rounds 5]``. Needs GStreamer's RTSP server for the system python3 (what
``scripts/test.sh`` installs); the cameras are real RTSP servers on 127.0.0.1 (live H.264 at
15 fps), each ``coral run`` a separate process with recording and metrics on.

Targets: one camera: end-to-end p50 <= 2x the model's latency p50; N cameras: every camera
delivers about ``max_fps`` and every processed frame is recorded (nothing lost). Figures are
medians of interleaved rounds in one run; CPU is the ``coral run`` process's own (user +
system seconds per second of run), the cameras' encoders excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OFFLINE_ENV, median  # noqa: E402


def child_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def coral_run(urls: list[str], frames: int, max_fps: float, out: Path) -> tuple[dict, float]:
    """One ``coral run --demo`` on ``urls``; (its summary, its CPU seconds per second)."""
    command = [sys.executable, "-m", "coral_inference.cli", "run", "--demo", "--json"]
    for url in urls:
        command += ["--source", url]
    command += ["--max-frames", str(frames), "--output-dir", str(out)]
    command += ["--set", f"sources.max_fps={max_fps}"]
    cpu, started = child_cpu_seconds(), time.monotonic()
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **OFFLINE_ENV}, check=False
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"coral run failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return json.loads(result.stdout), (child_cpu_seconds() - cpu) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--max-fps", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=8.0, help="of frames per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from coral_inference.testing.rtsp_camera import RTSPCamera, missing_reason

    reason = missing_reason()
    if reason:
        raise SystemExit(f"no RTSP camera here: {reason}")
    frames = round(args.seconds * args.max_fps)
    with tempfile.TemporaryDirectory(prefix="coral-cameras-") as scratch:
        root = Path(scratch)
        cameras = [RTSPCamera(root, size=args.size, fps=15) for _ in range(args.cameras)]
        try:
            for camera in cameras:
                camera.start()
            urls = [camera.url for camera in cameras]
            one: dict[str, list[float]] = {"fps": [], "latency": [], "e2e": [], "cpu": []}
            many: dict[str, list[float]] = {"fps": [], "cpu": [], "slowest": [], "lost": []}
            for index in range(args.rounds):  # interleaved: load drifts hit both alike
                summary, cpu = coral_run(urls[:1], frames, args.max_fps, root / f"one-{index}")
                one["fps"].append(summary["fps"])
                one["latency"].append(summary["latency_ms"]["p50"])
                one["e2e"].append(summary["end_to_end_ms"]["p50"])
                one["cpu"].append(cpu)
                summary, cpu = coral_run(
                    urls, frames * len(urls), args.max_fps, root / f"many-{index}"
                )
                recording = summary["recording"]
                many["fps"].append(summary["fps"])
                many["cpu"].append(cpu / len(urls))
                many["slowest"].append(min(s["frames"] for s in summary["sources"]))
                many["lost"].append(summary["frames"] - recording["frames_written"])
                print(
                    f"round {index + 1}: one camera {one['fps'][-1]:.1f} fps, e2e "
                    f"{one['e2e'][-1]:.0f} ms / model {one['latency'][-1]:.0f} ms; "
                    f"{len(urls)} cameras {summary['fps']:.1f} fps, frames per camera "
                    f"{[s['frames'] for s in summary['sources']]}, not recorded {many['lost'][-1]}",
                    flush=True,
                )
        finally:
            for camera in cameras:
                camera.stop()
    ratio = median(one["e2e"]) / median(one["latency"])
    print(
        f"\none {args.size} camera at max_fps {args.max_fps:g}: {median(one['fps']):.2f} fps, "
        f"model p50 {median(one['latency']):.1f} ms, end-to-end p50 {median(one['e2e']):.1f} ms "
        f"-> {ratio:.2f}x (goal <= 2x); CPU {median(one['cpu']):.2f} s/s"
    )
    print(
        f"{args.cameras} cameras: {median(many['fps']):.2f} fps in all "
        f"({median(many['fps']) / median(one['fps']):.2f}x one camera), CPU per camera "
        f"{median(many['cpu']):.2f} s/s, fewest frames of a camera {median(many['slowest']):g} "
        f"of {frames}, frames not recorded (median) {median(many['lost']):g} "
        "(recording mode: encode; copy is not built yet)"
    )


if __name__ == "__main__":
    main()
