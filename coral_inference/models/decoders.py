"""Output decoders: turn raw model outputs into :class:`~.detections.Detections`.

A decoder is a function ``fn(outputs, manifest, context) -> Detections`` taking the session's
outputs for *one* image (batch dimension of 1), the package manifest and a
:class:`DecodeContext`, and returning boxes in **model-input pixels**, confidence-thresholded and
suppressed; the runner maps them back to the source frame. Built-ins: ``yolov8``, ``yolov8_split``
(the same head cut before its DFL tail, as NPUs quantise it best), ``yolov5`` and
``centerface``; plugins add more with the ``register_decoder`` hook, into the registry of the
runtime that loads them (:class:`DecoderRegistry`). Whatever reads a manifest or runs a model
is handed the registry to resolve names through (``decoders=``); without one, the built-ins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from .detections import Detections
from .errors import ModelPackageError
from .nms import nms

if TYPE_CHECKING:
    from .manifest import ModelManifest

__all__ = [
    "BUILTIN_DECODERS",
    "DecodeContext",
    "Decoder",
    "DecoderClash",
    "DecoderRegistry",
    "available_decoders",
    "decode_centerface",
    "decode_yolov5",
    "decode_yolov8",
    "decode_yolov8_split",
    "get_decoder",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodeContext:
    """What a decoder needs besides the outputs and the manifest.

    Attributes:
        input_size: ``(width, height)`` of the tensor that was fed to the model.
        confidence: Minimum confidence to keep a box.
        iou: NMS overlap threshold.
        max_detections: Most boxes to return.
    """

    input_size: tuple[int, int]
    confidence: float
    iou: float
    max_detections: int


Decoder = Callable[[Sequence[np.ndarray], "ModelManifest", DecodeContext], Detections]


@dataclass(frozen=True)
class DecoderEntry:
    """One registered decoder: the function and the manifest options it accepts."""

    fn: Decoder
    options: frozenset[str] | None


class DecoderClash(ValueError):
    """A second, different decoder was registered under a name already taken."""


class DecoderRegistry:
    """The decoders one runtime knows: the built-ins plus what its plugins registered.

    Each :class:`~coral_inference.runtime.RuntimeContext` owns one, so two runtimes (or an
    ``init`` after a ``shutdown``) never see each other's plugin decoders, and registering the
    same function again is harmless.
    """

    def __init__(self, entries: Mapping[str, DecoderEntry] | None = None) -> None:
        self._entries: dict[str, DecoderEntry] = dict(
            BUILTIN_DECODERS if entries is None else entries
        )

    def register(self, name: str, fn: Decoder, *, options: Iterable[str] | None = None) -> None:
        """Make ``fn`` available as ``decoder.type == name`` in manifests.

        ``options`` are the keys the decoder accepts in the manifest's ``decoder`` object (any
        other key is rejected on load with a did-you-mean); ``None`` accepts any key. A name
        already taken by a *different* function raises :class:`DecoderClash`.
        """
        if not name or not isinstance(name, str):
            raise ValueError(f"decoder name must be a non-empty string, got {name!r}")
        existing = self._entries.get(name)
        if existing is not None and existing.fn is not fn:
            raise DecoderClash(f"decoder {name!r} is already registered by {_origin(existing.fn)}")
        self._entries[name] = DecoderEntry(fn, None if options is None else frozenset(options))
        logger.debug("registered decoder %r", name)

    def get(self, name: str) -> Decoder:
        """The decoder registered as ``name``; ``KeyError`` listing the available ones if none."""
        try:
            return self._entries[name].fn
        except KeyError:
            raise KeyError(f"no decoder {name!r}; available: {', '.join(self.names())}") from None

    def names(self) -> tuple[str, ...]:
        """Names of the registered decoders, sorted."""
        return tuple(sorted(self._entries))

    def options(self, name: str) -> frozenset[str] | None:
        """The option keys decoder ``name`` accepts (``None``: any)."""
        return self._entries[name].options


def _origin(fn: Decoder) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s}"


def get_decoder(name: str) -> Decoder:
    """The built-in decoder ``name`` (a runtime's plugin decoders are in its ``decoders``)."""
    return DecoderRegistry().get(name)


def available_decoders() -> tuple[str, ...]:
    """Names of the built-in decoders, sorted."""
    return DecoderRegistry().names()


# -- shared helpers ---------------------------------------------------------------------------


def _flag(manifest: ModelManifest, key: str) -> bool:
    value = manifest.decoder.options.get(key, False)
    if not isinstance(value, bool):
        raise ModelPackageError(f"expected true or false, got {value!r}", field=f"decoder.{key}")
    return value


def _rows(outputs: Sequence[np.ndarray], width: int, manifest: ModelManifest) -> np.ndarray:
    """The first output as ``(N, width)`` rows, accepting ``[1, width, N]`` or ``[1, N, width]``."""
    if not outputs:
        raise ValueError("the model returned no outputs")
    out = np.asarray(outputs[0])
    if out.ndim == 3 and out.shape[0] == 1:
        out = out[0]
    if out.ndim == 2 and out.shape[0] == width:
        return out.T
    if out.ndim == 2 and out.shape[1] == width:
        return out
    nc = len(manifest.classes)
    raise ModelPackageError(
        f"the {manifest.decoder.type} decoder expected an output of shape [1, {width}, N] or "
        f"[1, N, {width}] for {nc} classes, got {list(np.shape(outputs[0]))}; check that "
        "'classes' lists every class the model was trained on and that the decoder type matches "
        "the model",
        field="classes",
    )


def _cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    half = boxes[:, 2:4] * 0.5
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def _finish(
    xyxy: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray,
    context: DecodeContext,
    class_agnostic: bool,
) -> Detections:
    keep = nms(
        xyxy, scores, None if class_agnostic else class_ids, context.iou, context.max_detections
    )
    return Detections(
        xyxy=xyxy[keep].astype(np.float32, copy=False),
        confidence=scores[keep].astype(np.float32, copy=False),
        class_id=class_ids[keep].astype(np.int64, copy=False),
    )


# -- built-in decoders ------------------------------------------------------------------------


def decode_yolov8(
    outputs: Sequence[np.ndarray], manifest: ModelManifest, context: DecodeContext
) -> Detections:
    """Ultralytics YOLOv8/v11 head: ``[1, 4 + nc, N]`` rows of cx, cy, w, h, class scores.

    Options: ``normalized`` (boxes in 0..1, scaled by the input size), ``class_agnostic`` (NMS
    across classes).
    """
    rows = _rows(outputs, 4 + len(manifest.classes), manifest)
    return _best_class(rows[:, :4], rows[:, 4:], manifest, context)


def decode_yolov5(
    outputs: Sequence[np.ndarray], manifest: ModelManifest, context: DecodeContext
) -> Detections:
    """YOLOv5/v7 head: ``[1, N, 5 + nc]`` rows of cx, cy, w, h, objectness, class scores.

    A box's confidence is objectness times its best class score. Options as for ``yolov8``.
    """
    rows = _rows(outputs, 5 + len(manifest.classes), manifest)
    rows = rows[rows[:, 4] >= context.confidence]  # conf <= objectness: a cheap pre-filter
    return _best_class(rows[:, :4], rows[:, 5:] * rows[:, 4:5], manifest, context)


def _best_class(
    cxcywh: np.ndarray, class_scores: np.ndarray, manifest: ModelManifest, context: DecodeContext
) -> Detections:
    """Each row's best class and score, thresholded, as boxes in model-input pixels, NMS'd."""
    class_ids = class_scores.argmax(axis=1)
    scores = np.take_along_axis(class_scores, class_ids[:, None], axis=1)[:, 0]
    hit = scores >= context.confidence
    boxes = _cxcywh_to_xyxy(cxcywh[hit].astype(np.float32))
    if _flag(manifest, "normalized"):
        boxes *= np.array(context.input_size * 2, np.float32)
    return _finish(boxes, scores[hit], class_ids[hit], context, _flag(manifest, "class_agnostic"))


def decode_yolov8_split(
    outputs: Sequence[np.ndarray], manifest: ModelManifest, context: DecodeContext
) -> Detections:
    """YOLOv8 head cut before its DFL tail (Rockchip model zoo layout), per stride 8/16/32:
    box DFL logits ``[1, 4 * bins, H, W]``, class scores after the sigmoid ``[1, nc, H, W]`` and,
    optionally, their clipped sum ``[1, 1, H, W]`` (a cheap per-cell pre-filter), in that order.

    A cell's box is its centre ``(x + 0.5, y + 0.5)`` minus/plus the expected left, top, right,
    bottom distances (softmax over the bins), times the stride; the stride is the input size over
    the grid size. Decodes to exactly what ``yolov8`` decodes from the uncut model. Option:
    ``class_agnostic``.
    """
    nc = len(manifest.classes)
    per_level = 3 if len(outputs) % 3 == 0 and np.shape(outputs[2])[1:2] == (1,) else 2
    if not outputs or len(outputs) % per_level:
        raise ModelPackageError(
            f"the yolov8_split decoder expects (box, scores[, score sum]) outputs per stride, "
            f"got {len(outputs)} outputs",
            field="decoder.type",
        )
    width, _ = context.input_size
    boxes, scores, class_ids = [], [], []
    for start in range(0, len(outputs), per_level):
        box = np.asarray(outputs[start])[0]
        cls = np.asarray(outputs[start + 1])[0]
        if cls.shape[0] != nc or box.shape[0] % 4 or box.shape[1:] != cls.shape[1:]:
            raise ModelPackageError(
                f"the yolov8_split decoder expected box [1, 4*bins, H, W] and scores "
                f"[1, {nc}, H, W] for {nc} classes, got {list(box.shape)} and {list(cls.shape)}",
                field="classes",
            )
        grid_h, grid_w = cls.shape[1:]
        stride = width / grid_w
        if per_level == 3:
            cells = np.flatnonzero(np.asarray(outputs[start + 2])[0, 0] >= context.confidence)
        else:
            cells = np.arange(grid_h * grid_w)
        level_scores = cls.reshape(nc, -1)[:, cells]
        best = level_scores.argmax(axis=0)
        best_score = level_scores[best, np.arange(len(cells))]
        hit = best_score >= context.confidence
        cells, best, best_score = cells[hit], best[hit], best_score[hit]
        bins = box.shape[0] // 4
        logits = box.reshape(4, bins, -1)[:, :, cells].astype(np.float32)
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        distance = (weights * np.arange(bins, dtype=np.float32)[None, :, None]).sum(axis=1)
        distance /= weights.sum(axis=1)
        centre_x = cells % grid_w + 0.5
        centre_y = cells // grid_w + 0.5
        xyxy = np.stack(
            [
                centre_x - distance[0],
                centre_y - distance[1],
                centre_x + distance[2],
                centre_y + distance[3],
            ],
            axis=1,
        )
        boxes.append((xyxy * stride).astype(np.float32))
        scores.append(best_score.astype(np.float32))
        class_ids.append(best.astype(np.int64))
    return _finish(
        np.concatenate(boxes),
        np.concatenate(scores),
        np.concatenate(class_ids),
        context,
        _flag(manifest, "class_agnostic"),
    )


_CENTERFACE_STRIDE = 4


def decode_centerface(
    outputs: Sequence[np.ndarray], manifest: ModelManifest, context: DecodeContext
) -> Detections:
    """CenterFace: heatmap ``[1, 1, H/4, W/4]``, log-size ``[1, 2, ..]`` (h, w), offset
    ``[1, 2, ..]`` (y, x) and landmarks ``[1, 10, ..]`` (unused), in that order.

    Each heatmap cell at or above the confidence threshold is a face centred at
    ``(cell + offset + 0.5) * 4`` of size ``exp(log-size) * 4``, as in CenterFace's reference
    decoder; every face is class 0. Boxes are clipped to the input corner by corner (the
    reference clips the top-left corner and then adds the full size, shifting faces cut by the
    left or top edge).
    """
    if len(outputs) < 3:
        raise ValueError(
            f"the centerface decoder needs heatmap, scale and offset outputs, got {len(outputs)}"
        )
    heatmap = np.asarray(outputs[0])[0, 0]
    log_size = np.asarray(outputs[1])[0]
    offset = np.asarray(outputs[2])[0]
    ys, xs = np.nonzero(heatmap >= context.confidence)
    scores = heatmap[ys, xs]
    size_hw = np.exp(log_size[:, ys, xs]) * _CENTERFACE_STRIDE
    centre_yx = (np.stack([ys, xs]) + offset[:, ys, xs] + 0.5) * _CENTERFACE_STRIDE
    xyxy = np.stack(
        [
            centre_yx[1] - size_hw[1] / 2,
            centre_yx[0] - size_hw[0] / 2,
            centre_yx[1] + size_hw[1] / 2,
            centre_yx[0] + size_hw[0] / 2,
        ],
        axis=1,
    ).astype(np.float32)
    width, height = context.input_size
    np.clip(xyxy, 0, np.array([width, height, width, height], np.float32), out=xyxy)
    class_ids = np.zeros(len(scores), np.int64)
    return _finish(xyxy, scores, class_ids, context, class_agnostic=True)


#: The decoders every registry starts with (read-only).
BUILTIN_DECODERS: Mapping[str, DecoderEntry] = MappingProxyType(
    {
        "yolov8": DecoderEntry(decode_yolov8, frozenset({"normalized", "class_agnostic"})),
        "yolov8_split": DecoderEntry(decode_yolov8_split, frozenset({"class_agnostic"})),
        "yolov5": DecoderEntry(decode_yolov5, frozenset({"normalized", "class_agnostic"})),
        "centerface": DecoderEntry(decode_centerface, frozenset()),
    }
)
