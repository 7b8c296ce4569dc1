"""``backends.options.openvino``: the typed options of the OpenVINO backend and the
``compile_model`` properties they become.

:data:`OPTIONS` is declared to the host through the ``declare_options`` hook, which validates it
and fills in defaults when the configuration loads; :func:`resolve` checks a mapping again
(``create_session`` may be called directly) and returns :class:`OvSettings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coral_inference.runtime.config import check_section
from coral_inference.runtime.options import Option, Section

OPTIONS_PATH = "backends.options.openvino"

#: ``performance_hint`` values (OpenVINO's ``PERFORMANCE_HINT``).
HINTS = ("LATENCY", "THROUGHPUT", "CUMULATIVE_THROUGHPUT")
#: ``precision_hint`` values. ``auto``: f32 on the CPU, the device's default elsewhere (f16 on
#: GPUs and NPUs). OpenVINO's own CPU default is bf16 wherever the CPU has bf16 instructions
#: (AVX512_BF16, AMX), which moves boxes enough to change detections against the ONNX model's.
PRECISIONS = ("auto", "f32", "f16", "bf16")

OPTIONS = Section(
    "OpenVINO backend (Intel CPU, GPU, NPU)",
    {
        "device": Option(
            "str",
            "AUTO",
            "OpenVINO device: AUTO (OpenVINO picks), CPU, GPU, GPU.1, NPU, or AUTO:GPU,CPU ...; "
            "coral doctor lists the devices found",
        ),
        "performance_hint": Option(
            "str",
            "LATENCY",
            "LATENCY: each frame as soon as possible; THROUGHPUT: more frames in flight",
            choices=HINTS,
        ),
        "num_requests": Option(
            "int",
            0,
            "infer requests (frames in flight at once); 0: the number OpenVINO finds optimal "
            "for the hint",
            minimum=0,
        ),
        "cache_dir": Option(
            "path",
            None,
            "compiled-model cache: later starts load the compiled model from here (null: off)",
            nullable=True,
        ),
        "precision_hint": Option(
            "str",
            "auto",
            "inference precision: auto (f32 on the CPU, the device's default on GPU/NPU), f32, "
            "f16, bf16 (faster on CPUs with bf16 instructions, slightly different boxes)",
            choices=PRECISIONS,
        ),
        "inference_num_threads": Option(
            "int", 0, "CPU threads for inference (0: OpenVINO's choice)", minimum=0
        ),
    },
)


@dataclass(frozen=True)
class OvSettings:
    """Resolved ``backends.options.openvino``."""

    device: str
    performance_hint: str
    num_requests: int
    cache_dir: Path | None
    precision_hint: str
    inference_num_threads: int

    def compile_config(self) -> dict[str, Any]:
        """The properties handed to ``openvino.Core.compile_model``; options left at their
        "let OpenVINO choose" value are left out."""
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.performance_hint}
        if self.num_requests:
            config["PERFORMANCE_HINT_NUM_REQUESTS"] = str(self.num_requests)
        if self.cache_dir is not None:
            config["CACHE_DIR"] = str(self.cache_dir)
        if self.precision_hint != "auto":
            config["INFERENCE_PRECISION_HINT"] = self.precision_hint
        elif self.device == "CPU":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        elif self.device.partition(":")[0] in ("AUTO", "MULTI", "HETERO"):
            # only the CPU, should the virtual device run there: GPUs keep their f16
            config["DEVICE_PROPERTIES"] = {"CPU": {"INFERENCE_PRECISION_HINT": "f32"}}
        if self.inference_num_threads:
            config["INFERENCE_NUM_THREADS"] = str(self.inference_num_threads)
        return config


def resolve(options: Mapping[str, Any]) -> OvSettings:
    """``backends.options.openvino`` checked against :data:`OPTIONS`, defaults filled in;
    raises :class:`~coral_inference.runtime.config.ConfigError` naming the bad key."""
    merged = check_section(OPTIONS_PATH, OPTIONS, options)
    cache_dir = merged["cache_dir"]
    return OvSettings(
        device=str(merged["device"]).strip().upper(),
        performance_hint=merged["performance_hint"],
        num_requests=merged["num_requests"],
        cache_dir=None if cache_dir in (None, "") else Path(cache_dir).expanduser().resolve(),
        precision_hint=merged["precision_hint"],
        inference_num_threads=merged["inference_num_threads"],
    )
