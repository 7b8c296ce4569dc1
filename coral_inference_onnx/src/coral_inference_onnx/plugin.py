"""ONNX Runtime backend: model packages' ONNX weights on CPU, CUDA, TensorRT or OpenVINO.

The plugin module named by the ``coral_inference.backends`` entry point ``onnx``.
"""

from coral_inference import hookimpl
from coral_inference_onnx.backend import OPTIONS, OPTIONS_PATH, OnnxBackend


@hookimpl
def declare_options(declare):
    """``backends.options.onnx``: providers, threads, optimisation level."""
    declare(OPTIONS_PATH, OPTIONS)


@hookimpl
def register_backend(register):
    """Register the ONNX Runtime backend (onnxruntime itself is imported only on first use)."""
    register(OnnxBackend())
