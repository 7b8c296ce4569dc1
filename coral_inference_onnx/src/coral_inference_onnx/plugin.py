"""The plugin module named by the ``coral_inference.runtime.backends`` entry point ``onnx``."""

from coral_inference import hookimpl
from coral_inference_onnx.backend import OnnxBackend


@hookimpl
def register_backend(register):
    """Register the ONNX Runtime backend (onnxruntime itself is imported only on first use)."""
    register(OnnxBackend())
