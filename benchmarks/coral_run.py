"""``coral run`` throughput on the sample video against ``inference``'s
``InferencePipeline.init_with_custom_logic`` calling onnxruntime directly on the same frames
(same pre-processing and decoding code), and with all sinks on against all sinks off.

Run: ``python benchmarks/coral_run.py [--frames 150] [--rounds 5]``.
Targets: coral run / custom logic >= 1.0x; sinks-on overhead <= 5%.

The process CPU time per frame is printed too: on a shared machine other processes move the fps
of every round, while the CPU the sinks add per frame is this process's own.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OFFLINE_ENV, median, sample_assets  # noqa: E402

SINKS = ("video_sink", "metric_sink", "buffer_sink")


def custom_logic_fps(package_dir: Path, video: Path, frames: int) -> float:
    """InferencePipeline + on_video_frame that runs onnxruntime itself."""
    from inference import InferencePipeline

    from coral_inference.models.package import load_package
    from coral_inference.models.runner import ModelRunner
    from coral_inference_onnx.backend import OnnxBackend

    package = load_package(package_dir)
    runner = ModelRunner(package, OnnxBackend().create_session(package, {}))
    seen: list[float] = []
    pipeline = None

    def on_video_frame(video_frames):
        return [runner.predict(frame.image) for frame in video_frames]

    def on_prediction(_predictions, _frame):
        if len(seen) < frames:
            seen.append(time.monotonic())
            if len(seen) == frames:
                pipeline.terminate()

    pipeline = InferencePipeline.init_with_custom_logic(
        video_reference=str(video), on_video_frame=on_video_frame, on_prediction=on_prediction
    )
    pipeline.start(use_main_thread=False)
    pipeline.join()
    return (len(seen) - 1) / (seen[-1] - seen[0])


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def coral_run_fps(
    package_dir: Path, video: Path, frames: int, sinks_on: bool, cpu: list[float] | None = None
) -> float:
    """fps of one ``coral run``; appends its process CPU ms per frame to ``cpu`` (model load
    included, the same with sinks on and off)."""
    from coral_inference.app.run import RunRequest, run

    overrides = tuple(f"patches.{name}={str(sinks_on).lower()}" for name in SINKS)
    started = _cpu_seconds()
    with tempfile.TemporaryDirectory() as out:
        summary = run(
            RunRequest(
                model=str(package_dir),
                sources=(str(video),),
                output_dir=Path(out),
                max_frames=frames,
                overrides=overrides,
                use_env=False,
            )
        )
    if cpu is not None:
        cpu.append((_cpu_seconds() - started) / summary.frames * 1000)
    return (summary.frames - 1) / summary.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    package_dir, video = sample_assets()
    custom, plain, sinks = [], [], []
    plain_cpu: list[float] = []
    sinks_cpu: list[float] = []
    coral_run_fps(package_dir, video, 20, True)  # warm-up: imports, file cache
    for _ in range(args.rounds):  # interleaved
        custom.append(custom_logic_fps(package_dir, video, args.frames))
        plain.append(coral_run_fps(package_dir, video, args.frames, False, plain_cpu))
        sinks.append(coral_run_fps(package_dir, video, args.frames, True, sinks_cpu))
    c, p, s = median(custom), median(plain), median(sinks)
    print(f"{args.frames} frames of {video.name}, median of {args.rounds} interleaved rounds")
    print(f"init_with_custom_logic + onnxruntime:   {c:6.1f} fps")
    print(f"coral run, sinks off:                   {p:6.1f} fps")
    print(f"coral run, all sinks on:                {s:6.1f} fps")
    print(f"coral run (sinks on) / custom logic: {s / c:.3f}x (target >= 1.0x)")
    print(f"coral run (sinks off) / custom logic: {p / c:.3f}x")
    print(f"sink overhead: {(1 - s / p) * 100:.1f}% (target <= 5%)")
    pc, sc = median(plain_cpu), median(sinks_cpu)
    print(
        f"process CPU per frame: sinks off {pc:.1f} ms, on {sc:.1f} ms "
        f"(sinks' CPU share {(sc - pc) / sc * 100:.1f}%; load average {os.getloadavg()[0]:.1f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
