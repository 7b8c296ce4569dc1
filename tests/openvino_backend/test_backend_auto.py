"""``backends.preferred: auto`` with the real adapters and the real plugin registry: OpenVINO
(a runtime tuned for the CPU) ranks above onnxruntime's CPU provider; an explicit list or
``--backend`` still wins."""

from __future__ import annotations

import json

import pytest

from coral_inference.runtime.backends import (
    RANK_CPU,
    RANK_TUNED_CPU,
    RANK_UNKNOWN,
    BackendRank,
    choose_backend,
    rank_backends,
)
from coral_inference_onnx.backend import OnnxBackend
from coral_inference_openvino.backend import OpenVinoBackend


def test_auto_ranks_openvino_above_onnx_on_a_cpu_only_machine():
    import openvino as ov

    if any(d.split(".")[0] in ("GPU", "NPU") for d in ov.Core().available_devices):
        pytest.skip("OpenVINO sees an accelerator here: it ranks as one")
    backends = {"onnx": OnnxBackend(), "openvino": OpenVinoBackend()}
    ranking = rank_backends(backends)
    assert [(name, rank.score) for name, rank in ranking] == [
        ("openvino", RANK_TUNED_CPU),
        ("onnx", RANK_CPU),
    ]
    adapter, choice = choose_backend(backends, ["auto"])
    assert adapter.name == "openvino" and choice.chosen == "openvino"
    assert "auto" in choice.reason and "OpenVINO on CPU" in choice.reason
    assert [row["name"] for row in choice.ranking] == ["openvino", "onnx"]

    assert choose_backend({"onnx": OnnxBackend()}, ["auto"])[0].name == "onnx"
    # an explicit list, or a backend asked for by name, wins over the ranking
    assert choose_backend(backends, ["onnx", "openvino"])[0].name == "onnx"
    adapter, choice = choose_backend(backends, ["auto"], requested="onnx")
    assert adapter.name == "onnx" and "--backend onnx" in choice.reason


def test_a_rank_probe_that_raises_ranks_last_instead_of_failing():
    class Broken(OnnxBackend):
        name = "broken"

        def auto_rank(self) -> BackendRank:
            raise RuntimeError("driver gone")

    ranking = dict(rank_backends({"broken": Broken(), "onnx": OnnxBackend()}))
    assert ranking["broken"].score == RANK_UNKNOWN
    assert "driver gone" in ranking["broken"].reason
    assert choose_backend({"broken": Broken(), "onnx": OnnxBackend()}, ["auto"])[0].name == "onnx"


@pytest.mark.parametrize(("only", "expected"), [("onnx,openvino", "openvino"), ("onnx", "onnx")])
def test_coral_init_says_which_backend_auto_chose_and_why(coral, only, expected):
    result = coral(
        "init",
        "--json",
        "--set",
        "backends.preferred=auto",
        env={"CORAL_PLUGINS__ONLY": only},
    )
    assert result.returncode == 0, result.stderr
    choice = json.loads(result.stdout)["backend_choice"]
    assert choice["preferred"] == ["auto"]
    assert choice["chosen"] == expected, choice
    assert choice["ranking"][0]["name"] == expected
    assert choice["reason"].startswith("backends.preferred is auto")


def test_default_preferred_list_is_unchanged_and_auto_stands_alone(coral):
    result = coral("init", "--json", env={"CORAL_PLUGINS__ONLY": "onnx,openvino"})
    choice = json.loads(result.stdout)["backend_choice"]
    assert choice["preferred"] == ["rknn", "onnx"] and choice["chosen"] == "onnx"
    assert choice["ranking"] == []

    bad = coral("init", "--set", "backends.preferred=[auto, onnx]")
    assert bad.returncode == 2, bad.stderr
    assert "backends.preferred" in bad.stderr and "auto ranks every installed backend" in bad.stderr
