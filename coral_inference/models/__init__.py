"""Local model packages and the pre/post-processing shared by every inference backend.

A backend only supplies an :class:`InferenceSession`; :class:`ModelRunner` does the rest::

    package = load_package("models/centerface")          # or a .zip / .tar.gz
    runner = ModelRunner(package, session)               # session from a backend
    detections = runner.predict(frame_bgr)               # boxes in frame pixels

Importing this package needs only numpy: OpenCV, onnx and onnxruntime are imported when used.
"""

from .decoders import (
    DecodeContext,
    Decoder,
    available_decoders,
    decode_centerface,
    decode_yolov5,
    decode_yolov8,
    get_decoder,
    register_decoder,
)
from .detections import Detections
from .errors import ModelPackageError
from .manifest import (
    MANIFEST_FILENAME,
    DecoderSpec,
    InputSpec,
    ModelManifest,
    Thresholds,
)
from .nms import box_iou, nms
from .onnx_import import OnnxInput, import_onnx, inspect_onnx, make_dynamic
from .package import ModelPackage, default_cache_dir, load_package, write_package
from .preprocess import Transform, plan_transform, prepare
from .runner import InferenceSession, ModelRunner
from .sample import build_sample_package, generate_sample_video

__all__ = [
    "MANIFEST_FILENAME",
    "DecodeContext",
    "Decoder",
    "DecoderSpec",
    "Detections",
    "InferenceSession",
    "InputSpec",
    "ModelManifest",
    "ModelPackage",
    "ModelPackageError",
    "ModelRunner",
    "OnnxInput",
    "Thresholds",
    "Transform",
    "available_decoders",
    "box_iou",
    "build_sample_package",
    "decode_centerface",
    "decode_yolov5",
    "decode_yolov8",
    "default_cache_dir",
    "generate_sample_video",
    "get_decoder",
    "import_onnx",
    "inspect_onnx",
    "load_package",
    "make_dynamic",
    "nms",
    "plan_transform",
    "prepare",
    "register_decoder",
    "write_package",
]
