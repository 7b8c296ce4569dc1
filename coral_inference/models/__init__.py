"""Local model packages and the pre/post-processing shared by every inference backend.

A backend only supplies an :class:`InferenceSession`; :class:`ModelRunner` does the rest::

    package = load_package("models/centerface")          # or a .zip / .tar.gz
    runner = ModelRunner(package, session)               # session from a backend
    detections = runner.predict(frame_bgr)               # boxes in frame pixels

Importing this package imports nothing else: each name loads its submodule on first use, so
the light modules (``errors``) stay light for the CLI's metadata-only commands.
"""

from __future__ import annotations

from coral_inference.lazy import submodule_attributes

_SUBMODULE = {
    "DecodeContext": "decoders",
    "Decoder": "decoders",
    "DecoderSpec": "manifest",
    "Detections": "detections",
    "InferenceSession": "runner",
    "InputSpec": "manifest",
    "MANIFEST_FILENAME": "manifest",
    "ModelManifest": "manifest",
    "ModelPackage": "package",
    "ModelPackageError": "errors",
    "ModelRunner": "runner",
    "OnnxInput": "onnx_import",
    "RknnSpec": "manifest",
    "Thresholds": "manifest",
    "Transform": "preprocess",
    "available_decoders": "decoders",
    "box_iou": "nms",
    "build_sample_package": "sample",
    "decode_centerface": "decoders",
    "decode_yolov5": "decoders",
    "decode_yolov8": "decoders",
    "decode_yolov8_split": "decoders",
    "default_cache_dir": "package",
    "generate_sample_video": "sample",
    "get_decoder": "decoders",
    "import_onnx": "onnx_import",
    "inspect_onnx": "onnx_import",
    "load_package": "package",
    "make_dynamic": "onnx_import",
    "plan_transform": "preprocess",
    "prepare": "preprocess",
    "DecoderRegistry": "decoders",
    "write_package": "package",
}
__all__ = sorted(_SUBMODULE)
__getattr__ = submodule_attributes(__name__, _SUBMODULE)
