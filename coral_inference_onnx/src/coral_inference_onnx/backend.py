"""ONNX Runtime sessions with execution-provider selection and thread settings."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from coral_inference.runtime.backends import (
    RANK_CPU,
    Availability,
    BackendError,
    BackendRank,
    exception_summary,
)
from coral_inference.runtime.config import check_section
from coral_inference.runtime.options import Option, Section

if TYPE_CHECKING:
    import numpy as np

    from coral_inference.models.package import ModelPackage

log = logging.getLogger(__name__)

#: Distributions that provide the ``onnxruntime`` module.
ORT_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnxruntime-directml",
)
#: ``providers: auto`` takes the first of these the installed onnxruntime offers, in this order.
AUTO_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CPUExecutionProvider",
)
_OPTIMIZATION = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


OPTIONS_PATH = "backends.options.onnx"
#: ``backends.options.onnx``, declared through the ``declare_options`` hook.
OPTIONS = Section(
    "ONNX Runtime backend",
    {
        "providers": Option(
            "list[str]",
            ["CPUExecutionProvider"],
            "execution providers in order, or [auto]: "
            + ", ".join(p.removesuffix("ExecutionProvider") for p in AUTO_PROVIDERS)
            + " as the installed onnxruntime offers them",
        ),
        "intra_op_threads": Option(
            "int", 0, "threads inside one operator (0: onnxruntime's choice)", minimum=0
        ),
        "inter_op_threads": Option(
            "int", 0, "threads across operators (0: onnxruntime's choice)", minimum=0
        ),
        "optimization": Option(
            "str", "all", "graph optimisation level", choices=tuple(_OPTIMIZATION)
        ),
    },
)


def _ort_distribution() -> tuple[str, str] | None:
    for name in ORT_DISTRIBUTIONS:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def resolve_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``backends.options.onnx`` checked against :data:`OPTIONS`, defaults filled in."""
    return check_section(OPTIONS_PATH, OPTIONS, options)


def select_providers(requested: list[str], available: list[str]) -> list[str]:
    """The providers to hand to onnxruntime; a requested one that is missing is an error."""
    if requested == ["auto"]:
        return [p for p in AUTO_PROVIDERS if p in available] or list(available)
    missing = [p for p in requested if p not in available]
    if missing:
        raise BackendError(
            f"backends.options.onnx.providers: {', '.join(missing)} not offered by the installed "
            f"onnxruntime (it offers {', '.join(available)}); install the matching build "
            "(onnxruntime-gpu for CUDA/TensorRT, onnxruntime-openvino for OpenVINO) or use 'auto'"
        )
    return list(requested)


class OrtSession:
    """One onnxruntime ``InferenceSession`` behind the shared session protocol."""

    def __init__(self, session: Any) -> None:
        self._session = session
        first = session.get_inputs()[0]
        self.input_name: str = first.name
        self.input_shape: list[Any] = list(first.shape)
        self.providers: list[str] = session.get_providers()

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self._session.run(None, {self.input_name: tensor})

    def close(self) -> None:
        self._session = None


class OnnxBackend:
    """The ``onnx`` backend: loads ``.onnx`` weights with onnxruntime."""

    name = "onnx"
    formats = ("onnx",)

    def availability(self) -> Availability:
        if importlib.util.find_spec("onnxruntime") is None:
            return Availability(
                False, "onnxruntime is not installed: pip install 'coral-inference-onnx[cpu]'"
            )
        dist = _ort_distribution()
        label = f"{dist[0]} {dist[1]}" if dist else "onnxruntime"
        return Availability(True, label)

    def auto_rank(self) -> BackendRank:
        """Under ``backends.preferred: auto``: a portable CPU runtime, below a tuned one (the
        GPU providers need options of their own, so they do not raise the rank)."""
        return BackendRank(RANK_CPU, "onnxruntime on CPU")

    def create_session(self, package: ModelPackage, options: Mapping[str, Any]) -> OrtSession:
        """An onnxruntime session on the package's ``.onnx`` weights, with ``options``'
        providers, threads and graph optimisation level."""
        import onnxruntime as ort

        weights = package.weights_path("onnx")

        settings = resolve_options(options)
        providers = select_providers(settings["providers"], ort.get_available_providers())
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = settings["intra_op_threads"]
        session_options.inter_op_num_threads = settings["inter_op_threads"]
        session_options.graph_optimization_level = getattr(
            ort.GraphOptimizationLevel, _OPTIMIZATION[settings["optimization"]]
        )
        session_options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(weights), sess_options=session_options, providers=providers
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise BackendError(
                f"{weights}: onnxruntime cannot load this model ({exception_summary(exc)}); "
                "is the file a complete, valid ONNX model?"
            ) from None
        log.info("onnx session for %s on %s", weights.name, ", ".join(session.get_providers()))
        return OrtSession(session)
