"""RKNN pool scaling for one stream: 3 contexts vs 1, on the stand-in board with a fixed
simulated NPU time per frame, through the scheduling the ``rknn_pipeline`` patch gives
``InferencePipeline`` (frames in flight up to the pool size, delivered in order).

Pool 1 is the unpatched loop (one synchronous call per frame); pool 3 is
:func:`coral_inference_rknn.pipelining.pipelined_batches` over a 3-context :class:`RknnPool`.
Scheduling overhead per frame = (wall time - frames * NPU time / contexts) / frames.

Run: ``python benchmarks/rknn_pool.py [--frames 120] [--npu-ms 15] [--rounds 3]``.
Target: >= 2.7x.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import median  # noqa: E402

TARGET = 2.7


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--npu-ms", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from coral_inference_rknn.pipelining import pipelined_batches
    from coral_inference_rknn.session import RknnPool
    from coral_inference_rknn.testing.fake_rknnlite import RKNN_MAGIC, FakeNpu

    npu_s = args.npu_ms / 1000
    npu = FakeNpu(compute="zeros", delay_s=npu_s, output_shapes=((1, 64, 80, 80), (1, 80, 80, 80)))
    tensor = np.zeros((1, 640, 640, 3), np.uint8)
    frames = [[i] for i in range(args.frames)]  # one stream: batches of one frame
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.rknn"
        model.write_bytes(RKNN_MAGIC)
        one = RknnPool(npu.factory, model, "rk3588", [1])
        three = RknnPool(npu.factory, model, "rk3588", [1, 2, 4])

        def infer(pool):
            return lambda batch: [pool.run(tensor) for _ in batch]

        def serial() -> float:
            on_frame = infer(one)
            start = time.perf_counter()
            for batch in frames:
                on_frame(batch)
            return time.perf_counter() - start

        def pipelined() -> float:
            start = time.perf_counter()
            delivered = [b for b, _ in pipelined_batches(iter(frames), infer(three), len(three))]
            elapsed = time.perf_counter() - start
            assert delivered == frames, "frames out of order"
            return elapsed

        serial(), pipelined()  # warm-up
        serial_s, pipelined_s = [], []
        for _ in range(args.rounds):
            serial_s.append(serial())
            pipelined_s.append(pipelined())
        one.close()
        three.close()
    n = args.frames
    t1, t3 = median(serial_s), median(pipelined_s)
    ratio = t1 / t3
    print(
        f"one stream, {n} frames, simulated NPU time {args.npu_ms:g} ms per frame, peak "
        f"{npu.peak_busy} contexts busy"
    )
    print(
        f"pool 1 (unpatched loop): {n / t1:7.1f} frames/s, overhead {(t1 - n * npu_s) / n * 1e6:6.0f} us/frame"
    )
    print(
        f"pool 3 (pipelined):      {n / t3:7.1f} frames/s, overhead {(t3 - n * npu_s / 3) / n * 1e6:6.0f} us/frame"
    )
    print(
        f"ratio: {ratio:.2f}x (target >= {TARGET}x) {'OK' if ratio >= TARGET else 'BELOW TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
