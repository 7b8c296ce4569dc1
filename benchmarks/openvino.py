"""OpenVINO backend throughput: ``coral run --backend openvino`` against ``--backend onnx`` on the
sample video (sinks off), and the adapter (pre-processing + forward + decoding) against a plain
OpenVINO loop on the same compiled model and pre-processed input, measured in the same run.

Run: ``python benchmarks/openvino.py [--frames 150] [--rounds 5] [--adapter-frames 20]
[--adapter-rounds 15]``. Targets: coral run openvino / onnx >= 1.3x; adapter / plain OpenVINO
>= 0.95x. Both backends run with their default options (OpenVINO: device AUTO, LATENCY, f32 on
the CPU).

The process CPU time per frame is printed too: on a shared machine other processes move the fps
of every round, while the CPU a backend spends per frame is this process's own.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the openvino package: keep its folder behind site-packages on the
# path (for _common), or `import openvino` would import this script.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]
from _common import OFFLINE_ENV, median, read_frames, sample_assets  # noqa: E402

RUN_TARGET = 1.3
ADAPTER_TARGET = 0.95
SINKS = ("video_sink", "metric_sink", "buffer_sink")


def cpu_seconds() -> float:
    """This process's CPU time, every thread (OpenVINO's and onnxruntime's pools) included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def coral_run_fps(
    package_dir: Path, video: Path, frames: int, backend: str, cpu: list[float] | None = None
) -> float:
    """fps of one in-process ``coral run --backend BACKEND`` with every sink off; appends its
    process CPU ms per frame (model load included) to ``cpu``."""
    from coral_inference.app.run import RunRequest, run

    started = cpu_seconds()
    with tempfile.TemporaryDirectory() as out:
        summary = run(
            RunRequest(
                model=str(package_dir),
                source=str(video),
                backend=backend,
                output_dir=Path(out),
                max_frames=frames,
                overrides=tuple(f"patches.{name}=false" for name in SINKS),
                use_env=False,
            )
        )
    if summary.backend != backend:
        raise SystemExit(f"coral run used {summary.backend!r}, not {backend!r}")
    if cpu is not None:
        cpu.append((cpu_seconds() - started) / summary.frames * 1000)
    return (summary.frames - 1) / summary.seconds


def adapter_against_plain(package_dir: Path, video: Path, frames: int, rounds: int) -> None:
    from coral_inference.models.package import load_package
    from coral_inference.models.preprocess import prepare
    from coral_inference.models.runner import ModelRunner
    from coral_inference_openvino.backend import OpenVinoBackend

    package = load_package(package_dir)
    images = read_frames(video, frames)
    session = OpenVinoBackend().create_session(package, {})
    runner = ModelRunner(package, session)
    request = session._compiled.create_infer_request()  # the same compiled model, used bare
    tensors = [prepare(image, package.manifest.input)[0] for image in images]

    def plain_pass(cpu: list[float]) -> float:
        start, started = time.perf_counter(), cpu_seconds()
        for tensor in tensors:
            request.infer({0: tensor}, share_inputs=True)
        cpu.append((cpu_seconds() - started) / len(tensors) * 1000)
        return len(tensors) / (time.perf_counter() - start)

    def adapter_pass(cpu: list[float]) -> float:
        start, started = time.perf_counter(), cpu_seconds()
        for image in images:
            runner.predict(image)
        cpu.append((cpu_seconds() - started) / len(images) * 1000)
        return len(images) / (time.perf_counter() - start)

    plain_pass([]), adapter_pass([])  # warm-up
    plain, ours, plain_cpu, ours_cpu = [], [], [], []
    for _ in range(rounds):  # interleaved and short, so load changes hit both alike
        plain.append(plain_pass(plain_cpu))
        ours.append(adapter_pass(ours_cpu))
    p, a = median(plain), median(ours)
    height, width = images[0].shape[:2]
    print(
        f"adapter vs plain OpenVINO: {len(images)} frames of {width}x{height} on "
        f"{', '.join(session.devices)}, median of {rounds} interleaved rounds"
    )
    print(
        f"  plain OpenVINO infer (pre-processed input): {p:7.1f} frames/s, "
        f"CPU {median(plain_cpu):6.1f} ms/frame"
    )
    print(
        f"  adapter predict (pre + infer + decode):     {a:7.1f} frames/s, "
        f"CPU {median(ours_cpu):6.1f} ms/frame"
    )
    verdict = "OK" if a / p >= ADAPTER_TARGET else "BELOW TARGET"
    print(f"  ratio: {a / p:.3f}x (target >= {ADAPTER_TARGET}x) {verdict}")
    cpu_ratio = median(plain_cpu) / median(ours_cpu)
    print(f"  ratio of CPU per frame (plain / adapter): {cpu_ratio:.3f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames per coral run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--adapter-frames", type=int, default=20)
    parser.add_argument("--adapter-rounds", type=int, default=15)
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    package_dir, video = sample_assets()

    for backend in ("onnx", "openvino"):  # warm-up: imports, file cache
        coral_run_fps(package_dir, video, 20, backend)
    fps: dict[str, list[float]] = {"onnx": [], "openvino": []}
    cpu: dict[str, list[float]] = {"onnx": [], "openvino": []}
    for _ in range(args.rounds):  # interleaved
        for backend in fps:
            fps[backend].append(
                coral_run_fps(package_dir, video, args.frames, backend, cpu[backend])
            )
    onnx, ov = median(fps["onnx"]), median(fps["openvino"])
    print(
        f"coral run, sinks off: {args.frames} frames of {video.name}, median of {args.rounds} "
        f"interleaved rounds (load average {os.getloadavg()[0]:.1f})"
    )
    for backend, value in (("onnx", onnx), ("openvino", ov)):
        print(
            f"  --backend {backend + ':':9} {value:6.1f} fps, CPU {median(cpu[backend]):6.1f} "
            f"ms/frame  (rounds: {', '.join(f'{v:.1f}' for v in fps[backend])})"
        )
    verdict = "OK" if ov / onnx >= RUN_TARGET else "BELOW TARGET"
    print(f"  ratio: {ov / onnx:.3f}x (target >= {RUN_TARGET}x) {verdict}")
    cpu_ratio = median(cpu["onnx"]) / median(cpu["openvino"])
    print(f"  ratio of CPU per frame (onnx / openvino): {cpu_ratio:.3f}x")
    adapter_against_plain(package_dir, video, args.adapter_frames, args.adapter_rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
