"""One stream over the context pool: order, bounded in-flight frames, errors, a real pipeline."""

from __future__ import annotations

import random
import threading
import time
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest

from coral_inference_rknn.pipelining import (
    OrderedPipeline,
    in_flight_limit,
    pipelined_batches,
)


class Gauge:
    """Counts calls running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc):
        with self.lock:
            self.now -= 1


def test_results_come_in_order_with_depth_calls_at_once():
    gauge = Gauge()
    rng = random.Random(1)
    delays = [rng.uniform(0, 0.01) for _ in range(60)]

    def work(i):
        with gauge:
            time.sleep(delays[i])
        return i * i

    with OrderedPipeline(work, 3) as pipeline:
        got = list(pipeline.map(range(60)))
    assert got == [(i, i * i) for i in range(60)]
    assert gauge.peak == 3


def test_the_source_is_read_at_most_depth_items_ahead():
    pulled, delivered = [], []

    def source():
        for i in range(20):
            pulled.append(i)
            assert len(pulled) - len(delivered) <= 3, "read too far ahead"
            yield i

    with OrderedPipeline(lambda i: i, 3) as pipeline:
        for item, _ in pipeline.map(source()):
            delivered.append(item)
            time.sleep(0.001)
    assert delivered == list(range(20))


def test_a_slow_live_source_gets_each_result_without_waiting_for_later_frames():
    """Frames every 40 ms, 5 ms of work: each result comes right after its own frame."""
    pulled_at = {}

    def live_source():
        for i in range(8):
            time.sleep(0.04)
            pulled_at[i] = time.perf_counter()
            yield i

    def work(i):
        time.sleep(0.005)
        return i

    waits = []
    with OrderedPipeline(work, 3) as pipeline:
        for item, _ in pipeline.map(live_source()):
            waits.append(time.perf_counter() - pulled_at[item])
    assert max(waits) < 0.035, waits  # waiting for 2 later frames would be >= 80 ms


def test_a_failing_source_raises_after_the_frames_before_it():
    def source():
        yield from range(3)
        raise OSError("camera unplugged")

    delivered = []
    with OrderedPipeline(lambda i: i, 3) as pipeline:
        with pytest.raises(OSError, match="camera unplugged"):
            for item, _ in pipeline.map(source()):
                delivered.append(item)
    assert delivered == [0, 1, 2]


def test_an_error_arrives_in_order_and_in_flight_work_is_awaited():
    finished = []

    def work(i):
        time.sleep(0.02 if i != 4 else 0)
        if i == 4:
            raise RuntimeError("frame 4 failed")
        finished.append(i)
        return i

    delivered = []
    with OrderedPipeline(work, 3) as pipeline:
        with pytest.raises(RuntimeError, match="frame 4 failed"):
            for item, _ in pipeline.map(range(10)):
                delivered.append(item)
        running = [t for t in threading.enumerate() if t.name.startswith("coral-rknn-frame")]
        # the frames submitted after 4 finished (awaited) or never started (cancelled)
        assert set(finished) <= set(range(10)) - {4} and max(finished) <= 6
    assert delivered == [0, 1, 2, 3]
    assert all(not t.is_alive() for t in running)


def test_multiplexed_batches_are_spread_and_regrouped():
    gauge = Gauge()

    def on_video_frame(frames):
        with gauge:
            time.sleep(0.01)
        return [f"pred-{f}" for f in frames]

    batches = [["a1", "b1"], ["a2", "b2"], ["a3"], ["a4", "b4"]]
    got = list(pipelined_batches(iter(batches), on_video_frame, 3))
    assert got == [(batch, [f"pred-{f}" for f in batch]) for batch in batches]
    assert gauge.peak == 3


def test_in_flight_limit_reads_the_models_session():
    session = SimpleNamespace(max_in_flight=3)
    model = SimpleNamespace(runner=SimpleNamespace(session=session))
    assert in_flight_limit(partial(print, model=model)) == 3
    assert in_flight_limit(partial(print, model=SimpleNamespace())) == 1
    assert in_flight_limit(print) == 1


@pytest.mark.integration
def test_a_real_pipeline_keeps_three_contexts_busy_in_frame_order(tmp_path, rknn_sample):
    """InferencePipeline on a file, the model on a 3-context pool with 30 ms per inference."""
    pytest.importorskip("inference")
    import cv2
    from inference.core.interfaces.stream.inference_pipeline import InferencePipeline

    from coral_inference.runtime.patching import Patcher
    from coral_inference_rknn.pipelining import PIPELINE_CLASS, PipelinePatch
    from coral_inference_rknn.testing.fake_rknnlite import FakeNpu
    from coral_inference_rknn.testing.standin import standin_backend

    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(30):
        writer.write(np.full((48, 64, 3), i * 8, np.uint8))
    writer.release()

    npu = FakeNpu(compute="zeros", delay_s=0.03)
    session = standin_backend(npu).create_session(rknn_sample, {})
    model = SimpleNamespace(runner=SimpleNamespace(session=session))

    def on_video_frame(frames, model):
        return [
            {
                "frame_id": f.frame_id,
                "out": model.runner.session.run(np.zeros((1, 4, 4, 3), np.uint8)),
            }
            for f in frames
        ]

    sunk = []
    patch = PipelinePatch()
    patcher = Patcher(patch.name)
    patch.install(patcher, {PIPELINE_CLASS: InferencePipeline}, None)
    try:
        started = time.perf_counter()
        pipeline = InferencePipeline.init_with_custom_logic(
            video_reference=str(video),
            on_video_frame=partial(on_video_frame, model=model),
            on_prediction=lambda prediction, frame: sunk.append(
                (prediction["frame_id"], frame.frame_id)
            ),
        )
        pipeline.start()
        pipeline.join()
        elapsed = time.perf_counter() - started
    finally:
        patcher.undo()
        session.close()
    assert [p for p, _ in sunk] == list(range(1, 31))
    assert all(p == f for p, f in sunk)
    assert npu.peak_busy == 3
    assert elapsed < 30 * 0.03 * 0.7, elapsed  # serial would be >= 0.9 s
    assert not npu.live


@pytest.mark.integration
def test_a_multiplexed_pipeline_spreads_its_frames_over_the_pool(tmp_path, rknn_sample):
    """Two sources in one InferencePipeline: each batch's frames run on different contexts."""
    pytest.importorskip("inference")
    import cv2
    from inference.core.interfaces.stream.inference_pipeline import InferencePipeline

    from coral_inference.runtime.patching import Patcher
    from coral_inference_rknn.pipelining import PIPELINE_CLASS, PipelinePatch
    from coral_inference_rknn.testing.fake_rknnlite import FakeNpu
    from coral_inference_rknn.testing.standin import standin_backend

    videos = []
    for index in range(2):
        video = tmp_path / f"clip{index}.avi"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
        for i in range(20):
            writer.write(np.full((48, 64, 3), i * 8 + index, np.uint8))
        writer.release()
        videos.append(str(video))
    npu = FakeNpu(compute="zeros", delay_s=0.03)
    session = standin_backend(npu).create_session(rknn_sample, {})
    model = SimpleNamespace(runner=SimpleNamespace(session=session))

    def on_video_frame(frames, model):
        assert len(frames) == 1  # the patch hands each frame of a batch over on its own
        return [
            {
                "frame_id": f.frame_id,
                "source": f.source_id,
                "out": model.runner.session.run(np.zeros((1, 4, 4, 3), np.uint8)),
            }
            for f in frames
        ]

    sunk: dict[int, list[int]] = {0: [], 1: []}

    def sink(predictions, frames):
        for prediction, frame in zip(predictions, frames, strict=True):
            if frame is not None:
                assert prediction["source"] == frame.source_id
                sunk[frame.source_id].append(prediction["frame_id"])

    patch = PipelinePatch()
    patcher = Patcher(patch.name)
    patch.install(patcher, {PIPELINE_CLASS: InferencePipeline}, None)
    try:
        pipeline = InferencePipeline.init_with_custom_logic(
            video_reference=videos,
            on_video_frame=partial(on_video_frame, model=model),
            on_prediction=sink,
        )
        pipeline.start()
        pipeline.join()
    finally:
        patcher.undo()
        session.close()
    for source in (0, 1):
        assert sunk[source] == sorted(sunk[source]) and len(sunk[source]) >= 15
    assert npu.peak_busy >= 2
