"""Benchmark of the segmented recorder: caller-side submit cost and writer throughput.

Run ``python benchmarks/recording.py``. For each frame size and codec the same frames are encoded
twice: directly with the encoder on one thread (the baseline; the ``+boxes`` rows annotate there
too), then through a ``SegmentedRecorder`` (queue + writer thread, queue large enough that nothing
is dropped).
The ratio is recorder throughput over baseline throughput.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np

from coral_inference.services.annotation import draw_detections
from coral_inference.services.recording.recorder import SegmentedRecorder
from coral_inference.services.recording.video_writers import h264_available, open_video_writer

FPS = 25.0
SIZES = ((640, 360), (1280, 720))
DISTINCT_FRAMES = 25


@dataclass(frozen=True)
class Boxes:
    """Detections to annotate: a few labelled boxes."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray


def make_frames(width: int, height: int) -> list[np.ndarray]:
    """A textured background with moving shapes: compresses like a real scene, not like noise."""
    rng = np.random.default_rng(0)
    background = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (0, 0), 3)
    frames = []
    for index in range(DISTINCT_FRAMES):
        frame = np.roll(background, index * 4, axis=1)
        for shape in range(6):
            center = ((index * 9 + shape * width // 6) % width, height // 3 + shape * 20)
            cv2.circle(frame, center, height // 12, (40 * shape, 200, 255 - 40 * shape), -1)
        frames.append(frame)
    return frames


def make_boxes(width: int, height: int) -> Boxes:
    corners = np.array([[0.1, 0.1], [0.4, 0.2], [0.6, 0.5], [0.2, 0.6], [0.7, 0.1]])
    scale = np.array([width, height])
    return Boxes(
        xyxy=np.hstack([corners * scale, (corners + 0.2) * scale]),
        confidence=np.linspace(0.5, 0.95, len(corners)),
        class_id=np.arange(len(corners)),
    )


def baseline_fps(
    codec: str, frames: list[np.ndarray], count: int, directory: Path, boxes: Boxes | None
) -> float:
    """Annotate (if ``boxes``) and encode ``count`` frames directly on this thread."""
    height, width = frames[0].shape[:2]
    started = time.perf_counter()
    writer = open_video_writer(codec, directory / "baseline.mp4", width, height, FPS)
    for index in range(count):
        frame = frames[index % len(frames)]
        writer.write(frame if boxes is None else draw_detections(frame, boxes), index / FPS)
    writer.close()
    return count / (time.perf_counter() - started)


def recorder_run(
    codec: str, frames: list[np.ndarray], count: int, directory: Path, boxes: Boxes | None
) -> tuple[float, list[float]]:
    """Record ``count`` frames; return the throughput (frames/s) and each submit's cost (s)."""
    start = datetime.now(timezone.utc)
    submit_costs = []
    recorder = SegmentedRecorder(directory, fps=FPS, codec=codec, queue_size=count + 1)
    started = time.perf_counter()
    for index in range(count):
        before = time.perf_counter()
        recorder.submit(
            frames[index % len(frames)], boxes, timestamp=start + timedelta(seconds=index / FPS)
        )
        submit_costs.append(time.perf_counter() - before)
    recorder.close(timeout=None)
    elapsed = time.perf_counter() - started
    stats = recorder.stats
    assert stats.frames_written == count, stats
    return count / elapsed, submit_costs


def drop_path_cost(frames: list[np.ndarray], directory: Path) -> float:
    """Median µs per ``submit`` when the queue is full and every frame is dropped."""
    recorder = SegmentedRecorder(directory, fps=FPS, queue_size=1)
    costs = []
    for index in range(2000):
        before = time.perf_counter()
        recorder.submit(frames[index % len(frames)])
        costs.append(time.perf_counter() - before)
    recorder.close(timeout=None)
    return statistics.median(costs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=400, help="frames per run (default 400)")
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs (default 2)")
    args = parser.parse_args()
    count = args.frames
    logging.basicConfig(level=logging.ERROR)  # the drop test's warning is expected
    codecs = ["h264", "mp4v"] if h264_available() else ["mp4v"]
    print(
        f"{count} frames per run, best of {args.repeats}, {DISTINCT_FRAMES} distinct frames "
        f"cycled, nominal {FPS} fps; submit µs: median / p99 on the caller's thread"
    )
    header = f"{'size':>9} {'codec':>12} {'baseline f/s':>13} {'recorder f/s':>13}"
    print(f"{header} {'ratio':>6} {'submit µs':>14}")
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for width, height in SIZES:
            frames = make_frames(width, height)
            runs = [(codec, None) for codec in codecs]
            runs.append((codecs[0], make_boxes(width, height)))
            for run, (codec, boxes) in enumerate(runs):
                base, throughput, submit_costs = 0.0, 0.0, []
                for repeat in range(args.repeats):
                    directory = root / f"{width}x{height}-{run}-{repeat}"
                    directory.mkdir()
                    base = max(base, baseline_fps(codec, frames, count, directory, boxes))
                    fps, costs = recorder_run(codec, frames, count, directory / "rec", boxes)
                    throughput = max(throughput, fps)
                    submit_costs += costs
                label = codec if boxes is None else f"{codec}+boxes"
                median_us = statistics.median(submit_costs) * 1e6
                p99_us = statistics.quantiles(submit_costs, n=100)[98] * 1e6
                print(
                    f"{f'{width}x{height}':>9} {label:>12} {base:>13.1f} {throughput:>13.1f} "
                    f"{throughput / base:>6.2f} {median_us:>6.1f} / {p99_us:>5.1f}"
                )
        dropped_us = drop_path_cost(make_frames(1280, 720), root / "drops")
        print(f"submit cost when the queue is full (frame dropped): {dropped_us:.1f} µs (median)")


if __name__ == "__main__":
    main()
