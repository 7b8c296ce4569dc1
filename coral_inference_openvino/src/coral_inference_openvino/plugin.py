"""OpenVINO backend: model packages' ONNX or OpenVINO IR weights on Intel CPUs, GPUs and NPUs.

The plugin module named by the ``coral_inference.backends`` entry point ``openvino``. Nothing
here imports ``openvino``: that happens when a model is compiled (or a device list is asked for).
"""

from coral_inference import hookimpl


@hookimpl
def declare_options(declare):
    """``backends.options.openvino``: device, performance hint, requests, cache, precision,
    threads."""
    from .options import OPTIONS, OPTIONS_PATH

    declare(OPTIONS_PATH, OPTIONS)


@hookimpl
def register_backend(register):
    """Register the OpenVINO backend."""
    from .backend import OpenVinoBackend

    register(OpenVinoBackend())
