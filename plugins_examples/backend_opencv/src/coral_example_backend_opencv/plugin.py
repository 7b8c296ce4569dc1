"""Example backend: ONNX weights run by OpenCV's DNN module.

The plugin module named by the ``coral_inference.backends`` entry point ``opencv_dnn``.

It imports nothing heavy: OpenCV is imported only when a model is loaded.
"""

from collections.abc import Callable

from coral_example_backend_opencv.backend import OPTIONS, OPTIONS_PATH, OpenCVDnnBackend
from coral_inference import hookimpl
from coral_inference.runtime.backends import BackendAdapter
from coral_inference.runtime.options import Section


@hookimpl
def declare_options(declare: Callable[[str, Section], None]) -> None:
    """Declare ``backends.options.opencv_dnn`` (target, max_shapes)."""
    declare(OPTIONS_PATH, OPTIONS)


@hookimpl
def register_backend(register: Callable[[BackendAdapter], None]) -> None:
    """Register the ``opencv_dnn`` backend."""
    register(OpenCVDnnBackend())
