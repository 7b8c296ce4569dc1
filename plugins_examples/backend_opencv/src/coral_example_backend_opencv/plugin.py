"""The plugin module named by the ``coral_inference.runtime.backends`` entry point ``opencv_dnn``.

It imports nothing heavy: OpenCV is imported only when a model is loaded.
"""

from collections.abc import Callable

from coral_example_backend_opencv.backend import OpenCVDnnBackend
from coral_inference import hookimpl
from coral_inference.runtime.backends import BackendAdapter


@hookimpl
def register_backend(register: Callable[[BackendAdapter], None]) -> None:
    """Register the ``opencv_dnn`` backend."""
    register(OpenCVDnnBackend())
