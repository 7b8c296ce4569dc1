"""ONNX adapter throughput (pre-processing + forward + decoding) against a raw onnxruntime
forward pass on the same pre-processed input and model, measured in the same run.

Run: ``python benchmarks/onnx_adapter.py [--frames 60] [--rounds 5]``. Target: >= 0.95x.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import median, read_frames, sample_assets  # noqa: E402

TARGET = 0.95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from coral_inference.models.package import load_package
    from coral_inference.models.preprocess import prepare
    from coral_inference.models.runner import ModelRunner
    from coral_inference_onnx.backend import OnnxBackend

    package_dir, video = sample_assets()
    package = load_package(package_dir)
    frames = read_frames(video, args.frames)
    backend = OnnxBackend()
    session = backend.create_session(package, {})
    runner = ModelRunner(package, session)
    raw = session._session  # the onnxruntime.InferenceSession itself
    tensors = [prepare(frame, package.manifest.input)[0] for frame in frames]
    name = session.input_name

    def raw_pass() -> float:
        start = time.perf_counter()
        for tensor in tensors:
            raw.run(None, {name: tensor})
        return len(tensors) / (time.perf_counter() - start)

    def adapter_pass() -> float:
        start = time.perf_counter()
        for frame in frames:
            runner.predict(frame)
        return len(frames) / (time.perf_counter() - start)

    raw_pass(), adapter_pass()  # warm-up
    raw_fps, adapter_fps = [], []
    for _ in range(args.rounds):  # interleaved, so load changes hit both alike
        raw_fps.append(raw_pass())
        adapter_fps.append(adapter_pass())
    raw_m, ours = median(raw_fps), median(adapter_fps)
    height, width = frames[0].shape[:2]
    print(
        f"model {package.manifest.name}, {len(frames)} frames of {width}x{height}, "
        f"providers {', '.join(session.providers)}"
    )
    print(f"raw onnxruntime forward (pre-processed input): {raw_m:7.1f} frames/s")
    print(f"adapter predict (pre + forward + decode):       {ours:7.1f} frames/s")
    print(
        f"ratio: {ours / raw_m:.3f}x (target >= {TARGET}x) {'OK' if ours / raw_m >= TARGET else 'BELOW TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
