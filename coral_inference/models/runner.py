"""Backend-independent inference: preprocess, run a backend session, decode, map back."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, runtime_checkable

import numpy as np

from .decoders import DecodeContext, DecoderRegistry
from .detections import Detections
from .package import ModelPackage
from .preprocess import Transform, prepare

__all__ = ["InferenceSession", "ModelRunner"]

logger = logging.getLogger(__name__)


@runtime_checkable
class InferenceSession(Protocol):
    """What a backend supplies: a loaded model that maps an input tensor to its outputs.

    ``run`` gets a tensor shaped, typed and laid out as the package manifest says, with a batch
    dimension first, and returns every model output (in the model's output order), each with the
    batch dimension first.
    """

    input_name: str

    def run(self, tensor: np.ndarray) -> list[np.ndarray]: ...

    def close(self) -> None: ...


class ModelRunner:
    """Runs a model package on frames through a backend session.

    Args:
        package: The model package (manifest and weights).
        session: The backend's loaded model; the runner owns it and closes it in :meth:`close`.
        max_batch: Most frames :meth:`predict_batch` stacks into one ``session.run`` call
            (frames are only stacked when their tensors have the same shape). Leave at 1 for
            models exported with a fixed batch size of 1.
        decoders: Where the manifest's ``decoder.type`` is looked up (a runtime's
            ``context.decoders``); the built-in decoders by default.
    """

    def __init__(
        self,
        package: ModelPackage,
        session: InferenceSession,
        *,
        max_batch: int = 1,
        decoders: DecoderRegistry | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.package = package
        self.manifest = package.manifest
        self.session = session
        self.max_batch = max_batch
        registry = decoders if decoders is not None else DecoderRegistry()
        self._decode = registry.get(self.manifest.decoder.type)
        logger.debug(
            "runner for %r: decoder %s, input %s",
            self.manifest.name,
            self.manifest.decoder.type,
            self.manifest.input.size or "dynamic",
        )

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, indexed by :attr:`Detections.class_id`."""
        return self.manifest.classes

    def predict(
        self,
        image: np.ndarray,
        *,
        confidence: float | None = None,
        iou: float | None = None,
        max_detections: int | None = None,
    ) -> Detections:
        """Detect objects in one BGR uint8 frame; boxes are in the frame's pixels.

        ``confidence``, ``iou`` and ``max_detections`` override the manifest's thresholds for
        this call.
        """
        tensor, transform = prepare(image, self.manifest.input)
        outputs = self.session.run(tensor)
        return self._decode_one(outputs, transform, confidence, iou, max_detections)

    def predict_batch(
        self,
        images: Sequence[np.ndarray],
        *,
        confidence: float | None = None,
        iou: float | None = None,
        max_detections: int | None = None,
    ) -> list[Detections]:
        """:meth:`predict` for several frames, in order, batching up to ``max_batch`` frames
        whose tensors share a shape into one session call. A session advertising
        ``max_in_flight > 1`` (a pool of NPU contexts) gets that many calls at once."""
        prepared = [prepare(image, self.manifest.input) for image in images]
        results: list[Detections | None] = [None] * len(prepared)
        groups: dict[tuple[int, ...], list[int]] = {}
        for index, (tensor, _) in enumerate(prepared):
            groups.setdefault(tensor.shape, []).append(index)
        chunks = [
            indices[start : start + self.max_batch]
            for indices in groups.values()
            for start in range(0, len(indices), self.max_batch)
        ]

        def run(chunk: list[int]) -> None:
            if len(chunk) == 1:
                batch = prepared[chunk[0]][0]
            else:
                batch = np.concatenate([prepared[i][0] for i in chunk])
            outputs = self.session.run(batch)
            for row, index in enumerate(chunk):
                results[index] = self._decode_one(
                    [out[row : row + 1] for out in outputs],
                    prepared[index][1],
                    confidence,
                    iou,
                    max_detections,
                )

        in_flight = getattr(self.session, "max_in_flight", 1)
        if isinstance(in_flight, int) and in_flight > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(min(in_flight, len(chunks))) as executor:
                list(executor.map(run, chunks))
        else:
            for chunk in chunks:
                run(chunk)
        return results  # type: ignore[return-value]  # every slot is filled above

    def close(self) -> None:
        """Release the backend session."""
        self.session.close()

    def __enter__(self) -> ModelRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _decode_one(
        self,
        outputs: Sequence[np.ndarray],
        transform: Transform,
        confidence: float | None,
        iou: float | None,
        max_detections: int | None,
    ) -> Detections:
        defaults = self.manifest.thresholds
        context = DecodeContext(
            input_size=transform.input_size,
            confidence=defaults.confidence if confidence is None else float(confidence),
            iou=defaults.iou if iou is None else float(iou),
            max_detections=defaults.max_detections if max_detections is None else max_detections,
        )
        found = self._decode(outputs, self.manifest, context)
        xyxy = transform.to_source(found.xyxy)
        visible = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
        return Detections(xyxy[visible], found.confidence[visible], found.class_id[visible])
