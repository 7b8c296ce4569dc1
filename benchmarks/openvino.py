"""OpenVINO backend throughput: ``coral run --backend openvino`` against ``--backend onnx`` on the
sample video (sinks off), and the adapter (pre-processing + forward + decoding) against a plain
OpenVINO loop on the same compiled model and pre-processed input, measured in the same run.

Run: ``python benchmarks/openvino.py [--frames 150] [--rounds 5] [--adapter-frames 60]``.
Targets: coral run openvino / onnx >= 1.3x; adapter / plain OpenVINO >= 0.95x. Both backends run
with their default options (OpenVINO: device AUTO, LATENCY, f32 on the CPU).
"""

from __future__ import annotations

import argparse
import os
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


def coral_run_fps(package_dir: Path, video: Path, frames: int, backend: str) -> float:
    """fps of one in-process ``coral run --backend BACKEND`` with every sink off."""
    from coral_inference.app.run import RunRequest, run

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

    def plain_pass() -> float:
        start = time.perf_counter()
        for tensor in tensors:
            request.infer({0: tensor}, share_inputs=True)
        return len(tensors) / (time.perf_counter() - start)

    def adapter_pass() -> float:
        start = time.perf_counter()
        for image in images:
            runner.predict(image)
        return len(images) / (time.perf_counter() - start)

    plain_pass(), adapter_pass()  # warm-up
    plain, ours = [], []
    for _ in range(rounds):  # interleaved, so load changes hit both alike
        plain.append(plain_pass())
        ours.append(adapter_pass())
    p, a = median(plain), median(ours)
    height, width = images[0].shape[:2]
    print(
        f"adapter vs plain OpenVINO: {len(images)} frames of {width}x{height} on "
        f"{', '.join(session.devices)}, median of {rounds} interleaved rounds"
    )
    print(f"  plain OpenVINO infer (pre-processed input): {p:7.1f} frames/s")
    print(f"  adapter predict (pre + infer + decode):     {a:7.1f} frames/s")
    verdict = "OK" if a / p >= ADAPTER_TARGET else "BELOW TARGET"
    print(f"  ratio: {a / p:.3f}x (target >= {ADAPTER_TARGET}x) {verdict}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150, help="frames per coral run")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--adapter-frames", type=int, default=60)
    args = parser.parse_args()
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    package_dir, video = sample_assets()

    for backend in ("onnx", "openvino"):  # warm-up: imports, file cache
        coral_run_fps(package_dir, video, 20, backend)
    fps: dict[str, list[float]] = {"onnx": [], "openvino": []}
    for _ in range(args.rounds):  # interleaved
        for backend in fps:
            fps[backend].append(coral_run_fps(package_dir, video, args.frames, backend))
    onnx, ov = median(fps["onnx"]), median(fps["openvino"])
    print(
        f"coral run, sinks off: {args.frames} frames of {video.name}, median of {args.rounds} "
        f"interleaved rounds (load average {os.getloadavg()[0]:.1f})"
    )
    print(f"  --backend onnx:      {onnx:6.1f} fps  {[round(v, 1) for v in fps['onnx']]}")
    print(f"  --backend openvino:  {ov:6.1f} fps  {[round(v, 1) for v in fps['openvino']]}")
    verdict = "OK" if ov / onnx >= RUN_TARGET else "BELOW TARGET"
    print(f"  ratio: {ov / onnx:.3f}x (target >= {RUN_TARGET}x) {verdict}")
    adapter_against_plain(package_dir, video, args.adapter_frames, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
