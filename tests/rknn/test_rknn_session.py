"""RKNN contexts and the pool on the stand-in RKNNLite: every -1/None failure, releases, options."""

from __future__ import annotations

import threading
import time
from collections import Counter

import numpy as np
import pytest

from coral_inference.runtime.backends import BackendError
from coral_inference.runtime.config import ConfigError
from coral_inference_rknn.options import resolve
from coral_inference_rknn.session import RknnContext, RknnError, RknnPool
from coral_inference_rknn.testing.fake_rknnlite import RKNN_MAGIC, FakeNpu
from coral_inference_rknn.testing.standin import build_standin_package, standin_backend


@pytest.fixture
def rknn_file(tmp_path):
    path = tmp_path / "model.rknn"
    path.write_bytes(RKNN_MAGIC + b"\0test")
    return path


def zeros_npu(**kwargs) -> FakeNpu:
    return FakeNpu(compute="zeros", output_shapes=((1, 2, 3), (1, 4)), **kwargs)


TENSOR = np.zeros((1, 8, 8, 3), np.uint8)


@pytest.mark.parametrize(
    ("call", "shown"),
    [
        ("load_rknn", "RKNNLite.load_rknn('model.rknn') returned -1"),
        ("init_runtime", "RKNNLite.init_runtime(core_mask=NPU_CORE_1) returned -1"),
    ],
)
def test_setup_failures_name_call_model_soc_and_release(rknn_file, call, shown):
    npu = zeros_npu()
    npu.fail[call] = 1
    with pytest.raises(RknnError) as caught:
        RknnContext(npu.factory, rknn_file, "rk3588", core_mask=2)
    message = str(caught.value)
    assert shown in message and str(rknn_file) in message and "on rk3588" in message
    assert not npu.live and npu.calls[-1] == "release"


def test_not_an_rknn_file_fails_load(tmp_path):
    bogus = tmp_path / "model.rknn"
    bogus.write_bytes(b"\x08\x07onnx")
    npu = zeros_npu()
    with pytest.raises(RknnError, match="load_rknn"):
        RknnContext(npu.factory, bogus, "rk3566", core_mask=0)
    assert not npu.live


def test_inference_none_is_an_error_and_the_context_goes_on(rknn_file):
    npu = zeros_npu()
    pool = RknnPool(npu.factory, rknn_file, "rk3588", [1])
    npu.fail["inference"] = 1
    with pytest.raises(RknnError) as caught:
        pool.run(TENSOR)
    assert (
        "RKNNLite.inference(inputs=[uint8 [1, 8, 8, 3]], data_format='nhwc') returned None"
        in str(caught.value)
    )
    assert str(rknn_file) in str(caught.value) and "rk3588" in str(caught.value)
    outputs = pool.run(TENSOR)  # the context was handed back: the next frame runs
    assert [o.shape for o in outputs] == [(1, 2, 3), (1, 4)]  # every output returned
    pool.close()
    assert not npu.live


def test_pool_init_failure_releases_the_contexts_made_so_far(rknn_file):
    npu = zeros_npu()
    npu.fail["init_runtime"] = 0
    original = npu.should_fail
    seen = Counter()

    def third_init_fails(call):
        seen[call] += 1
        return original(call) or (call == "init_runtime" and seen[call] == 3)

    npu.should_fail = third_init_fails
    with pytest.raises(RknnError, match="NPU_CORE_2"):
        RknnPool(npu.factory, rknn_file, "rk3588", [1, 2, 4])
    assert not npu.live and npu.calls.count("release") == 3


def test_close_waits_for_running_inference_then_releases_all(rknn_file):
    npu = zeros_npu(delay_s=0.2)
    pool = RknnPool(npu.factory, rknn_file, "rk3588", [1, 2, 4])
    worker = threading.Thread(target=pool.run, args=(TENSOR,))
    worker.start()
    time.sleep(0.05)
    pool.close()
    worker.join()
    assert not npu.live
    assert npu.calls.index("release") > npu.calls.index("inference")
    with pytest.raises(RknnError, match="closed"):
        pool.run(TENSOR)


def test_shrink_releases_idle_contexts(rknn_file):
    npu = zeros_npu()
    pool = RknnPool(npu.factory, rknn_file, "rk3588", [1, 2, 4])
    assert len(npu.live) == 3 and pool.max_in_flight == 3
    pool.shrink(1)
    assert len(npu.live) == 1 and len(pool) == 1 and pool.max_in_flight == 1
    pool.run(TENSOR)
    pool.close()
    assert not npu.live


def test_pool_runs_one_call_per_context_at_once(rknn_file):
    npu = zeros_npu(delay_s=0.05)
    pool = RknnPool(npu.factory, rknn_file, "rk3588", [1, 2, 4])
    threads = [threading.Thread(target=pool.run, args=(TENSOR,)) for _ in range(9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pool.close()
    assert npu.peak_busy == 3


@pytest.mark.parametrize(
    ("options", "soc", "masks"),
    [
        ({}, "rk3588", (1, 2, 4)),
        ({}, "rk3588s", (1, 2, 4)),
        ({}, "rk3576", (1, 2)),
        ({}, "rk3566", (0,)),
        ({"pool_size": 1}, "rk3588", (1,)),
        ({"pool_size": 6}, "rk3588", (1, 2, 4, 1, 2, 4)),
        ({"core_mask": "0_1_2", "pool_size": 1}, "rk3588", (7,)),
        ({"core_mask": "2"}, "rk3588", (4, 4, 4)),
        ({"core_mask": "1", "pool_size": 2}, "rk3588", (2, 2)),
    ],
)
def test_options_plan_one_mask_per_context(options, soc, masks):
    assert resolve(options, soc).core_masks == masks


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"core_mask": "3"}, "core_mask: expected one of auto, 0, 1, 2, 0_1, 0_1_2"),
        ({"core_mask": 1}, "core_mask: expected a string"),  # YAML's 0_1 is the integer 1
        ({"core_mask": "0_1"}, "names NPU core 1 but rk3566 has 1 core"),
        ({"pool_size": -1}, "pool_size: must be >= 0"),
        ({"pool": 3}, "unknown key 'pool'; did you mean 'pool_size'?"),
    ],
)
def test_bad_options_are_one_line_errors(options, words):
    with pytest.raises((BackendError, ConfigError)) as caught:
        resolve(options, "rk3566")
    assert words in str(caught.value)


def test_model_built_for_another_soc_is_refused_naming_both(onnx_sample, tmp_path):
    package = build_standin_package(onnx_sample, tmp_path / "pkg", target="rk3576")
    with pytest.raises(BackendError) as caught:
        standin_backend(soc="rk3588").create_session(package, {})
    assert "built for rk3576 but this board is rk3588" in str(caught.value)
    assert "--target rk3588" in str(caught.value)


def test_session_on_the_twin_matches_onnxruntime(rknn_sample, onnx_sample):
    """The stand-in's outputs are the ONNX twin's for the same (baked-in-normalised) input."""
    import onnxruntime as ort

    from coral_inference.models.preprocess import prepare

    npu = FakeNpu()
    session = standin_backend(npu).create_session(rknn_sample, {})
    frame = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
    raw, _ = prepare(frame, rknn_sample.manifest.input)
    assert raw.dtype == np.uint8 and raw.shape == (1, 480, 640, 3)
    twin_tensor, _ = prepare(frame, rknn_sample.manifest.rknn.onnx_input)
    reference = ort.InferenceSession(str(onnx_sample.weights_path("onnx")))
    expected = reference.run(None, {reference.get_inputs()[0].name: twin_tensor})
    got = session.run(raw)
    assert len(got) == len(expected) == 4
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert len(npu.live) == 3
    session.close()
    assert not npu.live


def test_backend_closes_its_open_sessions_at_shutdown(rknn_sample):
    npu = FakeNpu(compute="zeros")
    backend = standin_backend(npu)
    first = backend.create_session(rknn_sample, {"pool_size": 2})
    backend.create_session(rknn_sample, {})
    assert len(npu.live) == 5
    assert backend.close_sessions() == 2
    assert not npu.live
    first.close()  # closing again is harmless


def test_runtime_shutdown_releases_the_contexts(rknn_sample):
    import coral_inference
    from coral_inference.models.inference_models import open_model

    context = coral_inference.init(
        {
            "plugins": {"only": ["coral_inference_rknn.testing.standin"]},
            "backends": {"modules": ["coral_inference_rknn.testing.standin"]},
        }
    )
    try:
        runner = open_model(rknn_sample.root, context, backend="rknn")
        assert len(runner.session) == 3 and not runner.session.closed
    finally:
        coral_inference.shutdown()
    assert runner.session.closed and len(runner.session) == 0


def test_a_batch_of_images_runs_on_every_context_at_once(rknn_sample):
    """The HTTP API hands a model several images in one call: they share the pool."""
    from coral_inference.models.runner import ModelRunner

    npu = FakeNpu(delay_s=0.05)
    session = standin_backend(npu).create_session(rknn_sample, {})
    runner = ModelRunner(rknn_sample, session)
    from skimage import data

    astronaut = np.ascontiguousarray(data.astronaut()[..., ::-1])
    frames = [np.roll(astronaut, 40 * i, axis=1) for i in range(6)]
    expected = [runner.predict(frame) for frame in frames]
    npu.peak_busy = 0
    got = runner.predict_batch(frames)
    runner.close()
    assert npu.peak_busy == 3
    assert all(len(found) >= 1 for found in expected)  # the face, wherever it was rolled to
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a.xyxy, b.xyxy)


def test_the_rknn_files_own_target_wins_over_the_manifest(rknn_sample, tmp_path):
    """A .rknn copied over by hand: its toolkit trailer names rk3566, the manifest rk3588."""
    import shutil

    from coral_inference.models.package import load_package
    from coral_inference_rknn.backend import rknn_file_target

    package = tmp_path / "pkg"
    shutil.copytree(rknn_sample.root, package)
    weights = package / "model.rknn"
    weights.write_bytes(weights.read_bytes() + b'{"target_platform":["rk3566"],"version":"2.5.0"}')
    assert rknn_file_target(weights) == "rk3566"
    copied = load_package(package)
    with pytest.raises(BackendError, match="built for rk3566 but this board is rk3588"):
        standin_backend().create_session(copied, {})
    assert standin_backend(soc="rk3568").create_session(copied, {}).soc == "rk3568"
