"""The ``model.json`` manifest of a local model package: its schema, validation and defaults.

A manifest says how to feed a model (input size, resize, colour order, normalisation, layout) and
how to read its outputs (decoder, classes, thresholds). Every problem found on load raises
:class:`~.errors.ModelPackageError` naming the file and the key path. The format, with defaults::

    {
      "manifest_version": 1,
      "name": "centerface",
      "task": "object-detection",
      "weights": {"onnx": "model.onnx"},          # or just "model.onnx"; OpenVINO IR:
                                                  # {"openvino": "model.xml"} (+ model.bin)
      "input": {
        "size": [640, 640],                       # [width, height], or null: dynamic (required)
        "layout": "NCHW",                         # NCHW | NHWC
        "resize": "letterbox",                    # letterbox (keep aspect, pad) | stretch
        "align": "center",                        # letterbox padding: center | top-left
        "color": "RGB",                           # channel order the model expects: RGB | BGR
        "scale": 0.00392156862745098,             # number, or a fraction string like "1/255"
        "mean": [0, 0, 0],                        # tensor = (pixel * scale - mean) / std
        "std": [1, 1, 1],
        "dtype": "float32",                       # float32 | uint8 (uint8: raw pixels)
        "pad_value": 114,                         # letterbox fill, in 0..255 pixel units
        "stride": 32,                             # dynamic size: round up to a multiple of this
        "max_side": null                          # dynamic size: downscale so no side exceeds it
      },
      "classes": ["face"],
      "decoder": {"type": "centerface"},          # plus options of that decoder
      "thresholds": {"confidence": 0.25, "iou": 0.45, "max_detections": 300},
      "rknn": {                                   # only in packages with .rknn weights
        "target": "rk3588",                       # the SoC the .rknn was built for
        "quantization": "int8",                   # fp16 | int8
        "toolkit_version": "2.5.0",               # rknn-toolkit2 that built it
        "onnx": "model.onnx",                     # optional: the ONNX twin it was built from
        "onnx_input": {...}                       # optional: the twin's input (as "input")
      }
    }

An ``.rknn`` built with normalisation baked in takes raw pixels: its ``input`` is RGB, uint8,
NHWC, and ``rknn.onnx_input`` keeps how the ONNX twin is fed.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from .decoders import DecoderRegistry
from .errors import ManifestProblems, ModelPackageError

T = TypeVar("T")

__all__ = [
    "MANIFEST_FILENAME",
    "MANIFEST_VERSION",
    "SUPPORTED_TASKS",
    "DecoderSpec",
    "InputSpec",
    "ModelManifest",
    "RknnSpec",
    "Thresholds",
    "WEIGHT_COMPANIONS",
]

MANIFEST_FILENAME = "model.json"
MANIFEST_VERSION = 1
SUPPORTED_TASKS = ("object-detection",)

_LAYOUTS = ("NCHW", "NHWC")
_RESIZES = ("letterbox", "stretch")
_ALIGNS = ("center", "top-left")
_COLORS = ("RGB", "BGR")
_DTYPES = ("float32", "uint8")
_QUANTIZATIONS = ("fp16", "int8")
#: Weight formats whose name is not their file extension (``"weights": "model.xml"``).
_EXTENSION_FORMATS = {"xml": "openvino"}
#: Files a weights file of a format needs beside it: OpenVINO IR's ``model.xml`` holds the graph
#: and ``model.bin`` (same stem) the weights.
WEIGHT_COMPANIONS = {"openvino": (".bin",)}


@dataclass(frozen=True)
class InputSpec:
    """How a frame becomes the model's input tensor (see the module docstring for the fields)."""

    size: tuple[int, int] | None
    layout: str = "NCHW"
    resize: str = "letterbox"
    align: str = "center"
    color: str = "RGB"
    scale: float = 1 / 255
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    dtype: str = "float32"
    pad_value: int = 114
    stride: int = 32
    max_side: int | None = None

    @property
    def dynamic(self) -> bool:
        """Whether the input size follows each frame's size (``size`` is null)."""
        return self.size is None


@dataclass(frozen=True)
class DecoderSpec:
    """Which registered decoder reads the outputs, and its options (treat as read-only)."""

    type: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Thresholds:
    """Default post-processing thresholds; the runner can override them per call."""

    confidence: float = 0.25
    iou: float = 0.45
    max_detections: int = 300


@dataclass(frozen=True)
class RknnSpec:
    """What an ``.rknn`` file was built for (the manifest's optional ``rknn`` object)."""

    target: str
    quantization: str
    toolkit_version: str
    onnx: str | None = None
    onnx_input: InputSpec | None = None


@dataclass(frozen=True)
class ModelManifest:
    """A validated ``model.json``. Build it with :meth:`load` or :meth:`from_dict`."""

    name: str
    task: str
    weights: dict[str, str]
    input: InputSpec
    classes: tuple[str, ...]
    decoder: DecoderSpec
    thresholds: Thresholds = Thresholds()
    rknn: RknnSpec | None = None

    @classmethod
    def load(
        cls, path: str | PathLike[str], *, decoders: DecoderRegistry | None = None
    ) -> ModelManifest:
        """Read and validate a manifest file; ``decoders`` resolves ``decoder.type`` (a
        runtime's ``context.decoders``; the built-ins by default)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelPackageError(
                "file not found; a model package is a directory holding model.json and the "
                "weights file(s) it names",
                path=path,
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelPackageError(f"cannot read the manifest: {exc}", path=path) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelPackageError(
                f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path=path
            ) from None
        return cls.from_dict(data, source=path, decoders=decoders)

    @classmethod
    def from_dict(
        cls,
        data: Any,
        *,
        source: str | PathLike[str] = MANIFEST_FILENAME,
        decoders: DecoderRegistry | None = None,
    ) -> ModelManifest:
        """Validate a parsed manifest; ``source`` names the file in error messages, ``decoders``
        resolves ``decoder.type`` (the built-ins by default)."""
        registry = decoders if decoders is not None else DecoderRegistry()
        return _Parser(Path(source), registry).manifest(data)

    def to_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data, with every default filled in."""
        data = {
            "manifest_version": MANIFEST_VERSION,
            "name": self.name,
            "task": self.task,
            "weights": dict(self.weights),
            "input": _input_dict(self.input),
            "classes": list(self.classes),
            "decoder": {"type": self.decoder.type, **self.decoder.options},
            "thresholds": {
                "confidence": self.thresholds.confidence,
                "iou": self.thresholds.iou,
                "max_detections": self.thresholds.max_detections,
            },
        }
        if self.rknn is not None:
            rknn = self.rknn
            data["rknn"] = {
                "target": rknn.target,
                "quantization": rknn.quantization,
                "toolkit_version": rknn.toolkit_version,
                **({"onnx": rknn.onnx} if rknn.onnx else {}),
                **({"onnx_input": _input_dict(rknn.onnx_input)} if rknn.onnx_input else {}),
            }
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _input_dict(spec: InputSpec) -> dict[str, Any]:
    return {
        "size": list(spec.size) if spec.size is not None else None,
        "layout": spec.layout,
        "resize": spec.resize,
        "align": spec.align,
        "color": spec.color,
        "scale": spec.scale,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "dtype": spec.dtype,
        "pad_value": spec.pad_value,
        "stride": spec.stride,
        "max_side": spec.max_side,
    }


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(word: str, choices: Iterable[str]) -> str:
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


class _Parser:
    """Validates manifest data, raising ModelPackageError naming ``source`` and the key path."""

    def __init__(self, source: Path, decoders: DecoderRegistry) -> None:
        self.source = source
        self.decoders = decoders
        self.problems: list[ModelPackageError] = []

    def collect(self, parse: Callable[..., T], *args: Any) -> T | None:
        """``parse(*args)``, or None with its error kept, so that every problem is reported."""
        try:
            return parse(*args)
        except ModelPackageError as exc:
            self.problems.append(exc)
            return None

    def raise_problems(self) -> None:
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            raise ManifestProblems(self.problems)

    def error(self, key: str | None, message: str) -> ModelPackageError:
        return ModelPackageError(message, path=self.source, field=key)

    # -- structure ---------------------------------------------------------------------------

    def mapping(self, value: Any, key: str | None) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(key, f"expected a JSON object, got {_show(value)}")
        return value

    def known_keys(self, data: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:  # kept, not raised: the other keys are still checked
                self.problems.append(
                    self.error(
                        f"{prefix}{key}",
                        f"unknown key{_suggest(str(key), allowed)}; known keys: "
                        f"{', '.join(allowed)}",
                    )
                )

    def required(self, data: Mapping[str, Any], key: str, prefix: str = "") -> Any:
        if key not in data:
            raise self.error(f"{prefix}{key}", "missing required field")
        return data[key]

    # -- scalars -----------------------------------------------------------------------------

    def string(self, value: Any, key: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {_show(value)}")
        return value

    def choice(self, value: Any, key: str, choices: tuple[str, ...]) -> str:
        text = self.string(value, key)
        for option in choices:
            if option.lower() == text.lower():
                return option
        raise self.error(
            key,
            f"expected one of {', '.join(choices)}, got {_show(value)}{_suggest(text, choices)}",
        )

    def number(
        self, value: Any, key: str, *, low: float | None = None, high: float | None = None
    ) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            raise self.error(key, f"expected a number, got {_show(value)}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.error(key, f"expected a number {bounds}, got {_show(value)}")
        return float(value)

    def integer(self, value: Any, key: str, *, low: int, high: int | None = None) -> int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok or value < low or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise self.error(key, f"expected an integer {bounds}, got {_show(value)}")
        return int(value)

    def triple(self, value: Any, key: str, *, positive: bool = False) -> tuple[float, float, float]:
        what = "three positive numbers" if positive else "three numbers"
        if not isinstance(value, list) or len(value) != 3:
            raise self.error(
                key,
                f"expected {what} (one per channel, in model channel order), got {_show(value)}",
            )
        numbers = tuple(self.number(v, f"{key}[{i}]") for i, v in enumerate(value))
        if positive and min(numbers) <= 0:
            raise self.error(key, f"expected {what}, got {_show(value)}")
        return numbers  # type: ignore[return-value]

    # -- sections ----------------------------------------------------------------------------

    def manifest(self, data: Any) -> ModelManifest:
        data = self.mapping(data, None)
        self.known_keys(
            data,
            (
                "manifest_version",
                "name",
                "task",
                "weights",
                "input",
                "classes",
                "decoder",
                "thresholds",
                "rknn",
            ),
            "",
        )
        version = data.get("manifest_version", MANIFEST_VERSION)
        if version != MANIFEST_VERSION:
            raise self.error(
                "manifest_version",
                f"this coral-inference reads manifest version {MANIFEST_VERSION}, got "
                f"{_show(version)}; upgrade coral-inference or re-export the package",
            )
        fields = {
            "name": self.collect(lambda: self.string(self.required(data, "name"), "name")),
            "task": self.collect(self.task, data),
            "weights": self.collect(lambda: self.weights(self.required(data, "weights"))),
            "input": self.collect(lambda: self.input(self.required(data, "input"))),
            "classes": self.collect(lambda: self.classes(self.required(data, "classes"))),
            "decoder": self.collect(lambda: self.decoder(self.required(data, "decoder"))),
            "thresholds": self.collect(self.thresholds, data.get("thresholds", {})),
            "rknn": (
                self.collect(self.rknn, data["rknn"]) if data.get("rknn") is not None else None
            ),
        }
        self.raise_problems()
        return ModelManifest(**fields)  # type: ignore[arg-type]

    def task(self, data: Mapping[str, Any]) -> str:
        task = self.string(self.required(data, "task"), "task")
        if task not in SUPPORTED_TASKS:
            raise self.error(
                "task",
                f"unsupported task {task!r}{_suggest(task, SUPPORTED_TASKS)}; supported: "
                f"{', '.join(SUPPORTED_TASKS)}",
            )
        return task

    def rknn(self, value: Any) -> RknnSpec:
        data = self.mapping(value, "rknn")
        self.known_keys(data, RknnSpec.__dataclass_fields__, "rknn.")
        onnx = data.get("onnx")
        onnx_input = data.get("onnx_input")
        return RknnSpec(
            target=self.string(self.required(data, "target", "rknn."), "rknn.target").lower(),
            quantization=self.choice(
                self.required(data, "quantization", "rknn."), "rknn.quantization", _QUANTIZATIONS
            ),
            toolkit_version=self.string(
                self.required(data, "toolkit_version", "rknn."), "rknn.toolkit_version"
            ),
            onnx=None if onnx is None else self.string(onnx, "rknn.onnx"),
            onnx_input=None if onnx_input is None else self.input(onnx_input, "rknn.onnx_input"),
        )

    def weights(self, value: Any) -> dict[str, str]:
        if isinstance(value, str):
            fmt = PurePosixPath(value).suffix.lstrip(".").lower()
            fmt = _EXTENSION_FORMATS.get(fmt, fmt)
            if not fmt:
                raise self.error(
                    "weights",
                    f"cannot tell the format of {value!r} from its extension; give a mapping "
                    f'like {{"onnx": {json.dumps(value)}}}',
                )
            value = {fmt: value}
        value = self.mapping(value, "weights")
        if not value:
            raise self.error("weights", 'expected at least one weights file, e.g. "model.onnx"')
        weights = {}
        for fmt, name in value.items():
            key = f"weights.{fmt}"
            name = self.string(name, key)
            parts = PurePosixPath(name.replace("\\", "/")).parts
            if name.startswith(("/", "\\")) or ".." in parts or ":" in name:
                raise self.error(key, f"expected a file name inside the package, got {name!r}")
            weights[str(fmt).lower()] = name
        return weights

    def input(self, value: Any, key: str = "input") -> InputSpec:
        data = self.mapping(value, key)
        defaults = InputSpec(size=None)
        self.known_keys(data, InputSpec.__dataclass_fields__, f"{key}.")
        size = self.required(data, "size", f"{key}.")
        if size is not None:
            ok = isinstance(size, list) and len(size) == 2
            ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
            if not ok:
                raise self.error(
                    f"{key}.size",
                    f"expected two positive integers [width, height], got {_show(size)}; use "
                    "null for a dynamic size",
                )
            size = (size[0], size[1])
        dtype = self.choice(data.get("dtype", defaults.dtype), f"{key}.dtype", _DTYPES)
        scale = self.scale(data.get("scale", defaults.scale), f"{key}.scale")
        mean = self.triple(data.get("mean", list(defaults.mean)), f"{key}.mean")
        std = self.triple(data.get("std", list(defaults.std)), f"{key}.std", positive=True)
        if dtype == "uint8" and (scale != 1 or mean != (0, 0, 0) or std != (1, 1, 1)):
            raise self.error(
                f"{key}.dtype",
                "uint8 inputs are fed raw pixels, so scale must be 1, mean [0, 0, 0] and std "
                "[1, 1, 1]; bake the normalisation into the model or use float32",
            )
        max_side = data.get("max_side")
        return InputSpec(
            size=size,
            layout=self.choice(data.get("layout", defaults.layout), f"{key}.layout", _LAYOUTS),
            resize=self.choice(data.get("resize", defaults.resize), f"{key}.resize", _RESIZES),
            align=self.choice(data.get("align", defaults.align), f"{key}.align", _ALIGNS),
            color=self.choice(data.get("color", defaults.color), f"{key}.color", _COLORS),
            scale=scale,
            mean=mean,
            std=std,
            dtype=dtype,
            pad_value=self.integer(
                data.get("pad_value", defaults.pad_value), f"{key}.pad_value", low=0, high=255
            ),
            stride=self.integer(data.get("stride", defaults.stride), f"{key}.stride", low=1),
            max_side=None if max_side is None else self.integer(max_side, f"{key}.max_side", low=1),
        )

    def scale(self, value: Any, key: str = "input.scale") -> float:
        if isinstance(value, str):
            try:
                value = float(Fraction(value.replace(" ", "")))
            except (ValueError, ZeroDivisionError):
                raise self.error(
                    key, f"expected a number or a fraction like '1/255', got {value!r}"
                ) from None
        scale = self.number(value, key)
        if scale <= 0:
            raise self.error(key, f"expected a positive number, got {_show(value)}")
        return scale

    def classes(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.error(
                "classes", f"expected a non-empty list of class names, got {_show(value)}"
            )
        return tuple(self.string(name, f"classes[{i}]") for i, name in enumerate(value))

    def decoder(self, value: Any) -> DecoderSpec:
        if isinstance(value, str):
            value = {"type": value}
        data = self.mapping(value, "decoder")
        name = self.string(self.required(data, "type", "decoder."), "decoder.type")
        known = self.decoders.names()
        if name not in known:
            raise self.error(
                "decoder.type",
                f"unknown decoder {name!r}{_suggest(name, known)}; available: {', '.join(known)} "
                "(plugins add more with the register_decoder hook)",
            )
        options = {k: v for k, v in data.items() if k != "type"}
        allowed = self.decoders.options(name)
        if allowed is not None:
            self.known_keys(options, sorted(allowed), "decoder.")
        return DecoderSpec(type=name, options=options)

    def thresholds(self, value: Any) -> Thresholds:
        data = self.mapping(value, "thresholds")
        defaults = Thresholds()
        self.known_keys(data, Thresholds.__dataclass_fields__, "thresholds.")
        return Thresholds(
            confidence=self.number(
                data.get("confidence", defaults.confidence), "thresholds.confidence", low=0, high=1
            ),
            iou=self.number(data.get("iou", defaults.iou), "thresholds.iou", low=0, high=1),
            max_detections=self.integer(
                data.get("max_detections", defaults.max_detections),
                "thresholds.max_detections",
                low=1,
            ),
        )
