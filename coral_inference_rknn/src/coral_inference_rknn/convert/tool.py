"""The conversion itself, run inside rknn-toolkit2's environment (``python -m`` this module).

``python -m coral_inference_rknn.convert.tool REQUEST.json RESULT.json``: read the request that
:mod:`.cli` wrote, convert, optionally verify, and write one JSON result. The toolkit prints its
own log lines on stdout, so the result goes to a file, never to stdout.

The simulator runs only a model built in the same process (``load_rknn`` + ``init_runtime()``
fails), so ``--verify`` runs right after ``build`` on the same ``RKNN`` object.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from coral_inference.models.decoders import DecodeContext, get_decoder
from coral_inference.models.manifest import ModelManifest
from coral_inference.models.package import ModelPackage, load_package
from coral_inference.models.preprocess import prepare

from ..packaging import RKNN_WEIGHTS, rknn_manifest, toolkit_normalisation, write_rknn_package
from ..soc import SUPPORTED_SOCS
from .metrics import Agreement
from .split_head import cut_head, head_convs

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
TOOLKIT_DISTRIBUTION = "rknn-toolkit2"
#: ``--verify`` fails when an output's mean cosine over the images is below this.
DEFAULT_MIN_COSINE = {"fp16": 0.99, "int8": 0.85}


class ConvertError(RuntimeError):
    """A conversion problem the user can fix; the message says how."""


@dataclass(frozen=True)
class Request:
    package: Path
    out: Path
    target: str
    input_size: tuple[int, int] | None
    quantize: str
    dataset: Path | None
    verify: Path | None
    min_cosine: float
    min_recall: float
    min_iou: float
    force: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        return cls(
            package=Path(data["package"]),
            out=Path(data["out"]),
            target=data["target"],
            input_size=tuple(data["input_size"]) if data.get("input_size") else None,
            quantize=data.get("quantize", "fp16"),
            dataset=Path(data["dataset"]) if data.get("dataset") else None,
            verify=Path(data["verify"]) if data.get("verify") else None,
            min_cosine=float(
                data.get("min_cosine") or DEFAULT_MIN_COSINE[data.get("quantize", "fp16")]
            ),
            min_recall=float(data.get("min_recall", 0.9)),
            min_iou=float(data.get("min_iou", 0.75)),
            force=bool(data.get("force", False)),
        )


def images_in(directory: Path, what: str) -> list[Path]:
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConvertError(f"{what} {directory}: no {'/'.join(IMAGE_SUFFIXES)} images in it")
    return files


def read_bgr(path: Path) -> np.ndarray:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ConvertError(f"{path}: not an image OpenCV can read")
    return image


def _check(result: int, call: str, detail: str) -> None:
    if result != 0:
        raise ConvertError(f"rknn-toolkit2 {call} returned {result} ({detail}); see its log above")


def _validate(request: Request, source: ModelPackage) -> tuple[int, int]:
    if request.target not in SUPPORTED_SOCS:
        raise ConvertError(
            f"--target {request.target!r}: expected one of {', '.join(SUPPORTED_SOCS)}"
        )
    if "onnx" not in source.formats:
        raise ConvertError(f"{request.package}: no ONNX weights to convert")
    if request.quantize not in ("fp16", "int8"):
        raise ConvertError(f"--quantize {request.quantize!r}: expected fp16 or int8")
    if request.quantize == "int8" and request.dataset is None:
        raise ConvertError("--quantize int8 needs --dataset DIR of calibration images")
    size = request.input_size or source.manifest.input.size
    if size is None:
        raise ConvertError(
            f"{request.package}: the model's input size is dynamic; give --input-size WxH "
            "(the NPU runs one fixed size)"
        )
    if (request.out / "model.json").exists() and not request.force:
        raise ConvertError(f"{request.out} already holds a model package; pass --force")
    return size


def _calibration(files: list[Path], manifest: ModelManifest, work: Path) -> Path:
    """A dataset list of the images as the board will see them (letterboxed raw uint8 pixels),
    laid out as the ONNX model's input, which is what the toolkit reads ``.npy`` files as."""
    assert manifest.rknn is not None and manifest.rknn.onnx_input is not None
    lines = []
    for index, path in enumerate(files):
        tensor, _ = prepare(read_bgr(path), manifest.input)
        if manifest.rknn.onnx_input.layout == "NCHW":
            tensor = tensor.transpose(0, 3, 1, 2)
        target = work / f"calib_{index:04d}.npy"
        np.save(target, np.ascontiguousarray(tensor))
        lines.append(str(target))
    listing = work / "dataset.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing


def _onnx_input(path: Path) -> tuple[str, list]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    first = next(i for i in model.graph.input if i.name not in initializers)
    return first.name, [d.dim_value or d.dim_param for d in first.type.tensor_type.shape.dim]


def convert(request: Request) -> dict[str, Any]:
    """Convert (and verify); return the JSON-ready result."""
    import importlib.metadata

    from rknn.api import RKNN

    source = load_package(request.package)
    size = _validate(request, source)
    toolkit_version = importlib.metadata.version(TOOLKIT_DISTRIBUTION)
    request.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="coral-rknn-") as tmp:
        work = Path(tmp)
        onnx_path = source.weights_path("onnx")
        decoder = None
        model_path = onnx_path
        if source.manifest.decoder.type == "yolov8":
            import onnx

            if head_convs(onnx.load(str(onnx_path), load_external_data=False)):
                model_path = work / "split_head.onnx"
                strides = cut_head(onnx_path, model_path)
                options = source.manifest.decoder.options
                decoder = {"type": "yolov8_split"}
                if "class_agnostic" in options:
                    decoder["class_agnostic"] = options["class_agnostic"]
                log.info("cut the YOLOv8 head into the split layout (%d strides)", strides)
        manifest = rknn_manifest(
            source.manifest,
            size=size,
            target=request.target,
            quantization=request.quantize,
            toolkit_version=toolkit_version,
            decoder=decoder,
        )
        mean, std = toolkit_normalisation(source.manifest)
        name, _ = _onnx_input(model_path)
        width, height = size
        shape = (
            [1, 3, height, width]
            if source.manifest.input.layout == "NCHW"
            else [1, height, width, 3]
        )
        rknn = RKNN(verbose=False)
        try:
            started = time.perf_counter()
            _check(
                rknn.config(mean_values=[mean], std_values=[std], target_platform=request.target),
                "config",
                f"target {request.target}",
            )
            _check(
                rknn.load_onnx(model=str(model_path), inputs=[name], input_size_list=[shape]),
                "load_onnx",
                f"{model_path.name} with input {name} {shape}",
            )
            dataset = None
            if request.quantize == "int8":
                files = images_in(request.dataset, "--dataset")
                dataset = str(_calibration(files, manifest, work))
            _check(
                rknn.build(do_quantization=request.quantize == "int8", dataset=dataset),
                "build",
                request.quantize,
            )
            rknn_file = work / RKNN_WEIGHTS
            _check(rknn.export_rknn(str(rknn_file)), "export_rknn", str(rknn_file))
            build_seconds = time.perf_counter() - started
            package = write_rknn_package(request.out, manifest, rknn_file, model_path)
            result: dict[str, Any] = {
                "package": str(package.root),
                "target": request.target,
                "quantization": request.quantize,
                "toolkit_version": toolkit_version,
                "input_size": list(size),
                "decoder": manifest.decoder.type,
                "build_seconds": round(build_seconds, 2),
            }
            if request.verify is not None:
                _check(rknn.init_runtime(), "init_runtime", "simulator")
                report = verify(rknn, package, source, images_in(request.verify, "--verify"))
                report["thresholds"] = {
                    "min_cosine": request.min_cosine,
                    "min_recall": request.min_recall,
                    "min_iou": request.min_iou,
                }
                report["passed"] = _passed(report, request)
                result["verify"] = report
            return result
        finally:
            rknn.release()


def _passed(report: dict[str, Any], request: Request) -> bool:
    """Every output's mean cosine, the share of onnxruntime's boxes matched and their mean IoU
    at or above the thresholds."""
    worst = min(entry["mean"] for entry in report["cosine"])
    detections = report["detections"]
    iou_ok = detections["mean_iou"] is None or detections["mean_iou"] >= request.min_iou
    return worst >= request.min_cosine and detections["recall"] >= request.min_recall and iou_ok


def verify(
    rknn: Any, package: ModelPackage, source: ModelPackage, images: list[Path]
) -> dict[str, Any]:
    """The simulator against onnxruntime on ``images``: per-output cosine against the ONNX twin
    (same outputs), and detections against the *source* package through its own decoder."""
    import onnxruntime as ort

    manifest = package.manifest
    assert manifest.rknn is not None and manifest.rknn.onnx_input is not None
    twin = ort.InferenceSession(
        str(package.root / manifest.rknn.onnx), providers=["CPUExecutionProvider"]
    )
    original = ort.InferenceSession(
        str(source.weights_path("onnx")), providers=["CPUExecutionProvider"]
    )
    thresholds = manifest.thresholds
    agreement = Agreement()
    decode_rknn = get_decoder(manifest.decoder.type)
    decode_source = get_decoder(source.manifest.decoder.type)
    for path in images:
        frame = read_bgr(path)
        raw, transform = prepare(frame, manifest.input)
        converted = rknn.inference(inputs=[raw], data_format="nhwc")
        if converted is None:
            raise ConvertError(f"the simulator's inference returned None on {path}")
        tensor, _ = prepare(frame, manifest.rknn.onnx_input)
        twin_outputs = twin.run(None, {twin.get_inputs()[0].name: tensor})
        source_outputs = original.run(None, {original.get_inputs()[0].name: tensor})
        context = DecodeContext(
            input_size=transform.input_size,
            confidence=thresholds.confidence,
            iou=thresholds.iou,
            max_detections=thresholds.max_detections,
        )
        agreement.add(
            twin_outputs,
            [
                np.asarray(o, np.float32).reshape(t.shape)
                for o, t in zip(converted, twin_outputs, strict=True)
            ],
            decode_source(source_outputs, source.manifest, context),
            decode_rknn(converted, manifest, context),
        )
    return agreement.summary()


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    request_file, result_file = Path(argv[0]), Path(argv[1])
    try:
        result = convert(Request.from_dict(json.loads(request_file.read_text())))
    except ConvertError as exc:
        result = {"error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - reported as one line to the caller
        log.exception("conversion failed")
        lines = [line for line in str(exc).splitlines() if line.strip()]
        result = {"error": f"conversion failed: {type(exc).__name__}: {lines[-1] if lines else ''}"}
    result_file.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
