"""The ``opencv_dnn`` backend: ``.onnx`` weights on ``cv2.dnn``, behind the shared session protocol.

Only the session is supplied here; coral-inference's :class:`~coral_inference.models.runner.
ModelRunner` does the pre-processing (resize, layout, normalisation) the package manifest
describes and the decoding, exactly as for any other backend.

OpenCV's DNN module fixes a network's layer shapes on the first ``forward``: feeding the same
``Net`` a tensor of another shape afterwards returns wrong numbers without an error (seen with
OpenCV 4.10 and 4.12 on the CenterFace sample, whose input size follows the frame). So the
session keeps one ``Net`` per input shape, read from the weights held in memory, and drops the
least recently used one beyond ``max_shapes``. A camera or video has one frame size, so in
practice one net.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from coral_inference.runtime.backends import Availability, BackendError
from coral_inference.runtime.config import check_section
from coral_inference.runtime.options import Option, Section

if TYPE_CHECKING:
    import numpy as np

    from coral_inference.models.package import ModelPackage

log = logging.getLogger(__name__)

#: The pip wheels that provide ``cv2``; every one of them is built with the dnn module.
OPENCV_WHEELS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)
#: ``target`` values: OpenCL falls back to the CPU (with a warning from OpenCV) without a GPU.
TARGETS = ("cpu", "opencl")
OPTIONS_PATH = "backends.options.opencv_dnn"
#: ``backends.options.opencv_dnn``, declared through the ``declare_options`` hook: the runtime
#: checks it when the configuration loads and hands the checked mapping to ``create_session``.
OPTIONS = Section(
    "OpenCV DNN example backend",
    {
        "target": Option("str", "cpu", "where OpenCV runs the network", choices=TARGETS),
        "max_shapes": Option("int", 4, "input shapes kept compiled at once", minimum=1),
    },
)


def resolve_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` checked against :data:`OPTIONS`, defaults filled in."""
    return check_section(OPTIONS_PATH, OPTIONS, options)


class OpenCVDnnSession:
    """An ONNX model on ``cv2.dnn``: one ``Net`` per input shape, all from the same weights.

    ``input_name`` is empty: OpenCV does not expose the ONNX input's name, and an empty name
    addresses the network's only input. Outputs come back in the order of
    ``getUnconnectedOutLayersNames()``: check that it is your model's output order (it is for
    the CenterFace sample), since the decoders take outputs by position.
    Calls are serialised with a lock, because a ``cv2.dnn.Net`` is not thread-safe.
    """

    input_name = ""

    def __init__(self, model: np.ndarray, target: str, max_shapes: int, label: str) -> None:
        self._model = model
        self._target = target
        self._max_shapes = max_shapes
        self._label = label
        self._nets: OrderedDict[tuple[int, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        # Reading one net now validates the weights; it serves the first shape seen.
        self._unshaped: Any = self._read()
        self.output_names: tuple[str, ...] = tuple(self._unshaped.getUnconnectedOutLayersNames())

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        with self._lock:
            net = self._net_for(tuple(tensor.shape))
            net.setInput(tensor)
            return list(net.forward(self.output_names))

    def close(self) -> None:
        with self._lock:
            self._nets.clear()
            self._unshaped = None

    def _net_for(self, shape: tuple[int, ...]) -> Any:
        net = self._nets.pop(shape, None)
        if net is None:
            if self._unshaped is not None:
                net, self._unshaped = self._unshaped, None
            else:
                net = self._read()
            if len(self._nets) >= self._max_shapes:
                dropped, _ = self._nets.popitem(last=False)
                log.debug("%s: dropped the net for input shape %s", self._label, dropped)
            log.debug("%s: net for input shape %s", self._label, shape)
        self._nets[shape] = net  # most recently used last
        return net

    def _read(self) -> Any:
        import cv2

        try:
            net = cv2.dnn.readNetFromONNX(self._model)
        except cv2.error as exc:
            detail = str(exc).strip().splitlines()[-1]
            raise BackendError(
                f"{self._label}: OpenCV's DNN module cannot load this model ({detail}); "
                "it supports fewer ONNX operators than onnxruntime, try the onnx backend"
            ) from None
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(
            cv2.dnn.DNN_TARGET_OPENCL if self._target == "opencl" else cv2.dnn.DNN_TARGET_CPU
        )
        return net


class OpenCVDnnBackend:
    """The ``opencv_dnn`` backend: loads ``.onnx`` weights with ``cv2.dnn.readNetFromONNX``."""

    name = "opencv_dnn"
    formats = ("onnx",)

    def availability(self) -> Availability:
        """Available when ``cv2`` is installed with its dnn module; imports OpenCV only for a
        build that did not come from a pip wheel (the only way to see whether it has dnn)."""
        if importlib.util.find_spec("cv2") is None:
            return Availability(False, "OpenCV is not installed: pip install opencv-python")
        wheels = []
        for wheel in OPENCV_WHEELS:
            try:
                wheels.append(f"{wheel} {metadata.version(wheel)}")
            except metadata.PackageNotFoundError:
                continue
        if len(wheels) == 1:
            return Availability(True, wheels[0])
        if wheels:  # they share one cv2 folder: whichever was installed last provides it
            return Availability(True, f"one of {', '.join(wheels)} (they share cv2)")
        import cv2

        if not hasattr(cv2, "dnn"):
            return Availability(False, f"OpenCV {cv2.__version__} was built without dnn")
        return Availability(True, f"OpenCV {cv2.__version__} (not from a pip wheel)")

    def create_session(self, package: ModelPackage, options: Mapping[str, Any]) -> OpenCVDnnSession:
        """An OpenCV dnn network on the package's ``.onnx`` weights (``options``: target and
        how many input shapes to keep)."""
        import numpy as np

        weights = package.weights_path("onnx")

        settings = resolve_options(options)
        model = np.fromfile(weights, dtype=np.uint8)
        session = OpenCVDnnSession(
            model, settings["target"], settings["max_shapes"], label=weights.name
        )
        log.info("opencv_dnn session for %s on %s", weights.name, settings["target"])
        return session
