"""Local model packages on the runtime's backend, and as ``inference`` models.

:func:`open_model` loads a package on the selected backend and returns a
:class:`~coral_inference.models.runner.ModelRunner`. :func:`inference_model_class` wraps that in
a subclass of ``inference``'s ``Model`` whose ``infer`` answers like ``inference``'s own
object-detection models, so ``get_model``, ``InferencePipeline`` and the HTTP API use it as they
would a Roboflow model — offline. The ``local_models`` patch registers those classes under the
configured model ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coral_inference.models.package import ModelPackage, load_package
from coral_inference.models.runner import ModelRunner

if TYPE_CHECKING:
    from coral_inference.runtime import RuntimeContext

log = logging.getLogger(__name__)


def open_model(
    package: ModelPackage | str | Path, context: RuntimeContext, *, backend: str | None = None
) -> ModelRunner:
    """Load ``package`` on ``backend`` (or the runtime's preferred available backend)."""
    if not isinstance(package, ModelPackage):
        package = load_package(package, decoders=context.decoders)
    adapter = context.get_backend(backend, formats=package.formats)
    options = context.config.section(f"backends.options.{adapter.name}")
    session = adapter.create_session(package, options)
    log.info("model %r on backend %r", package.manifest.name, adapter.name)
    return ModelRunner(package, session, decoders=context.decoders)


def detections_to_responses(
    runner: ModelRunner, frames: list[Any], detections: list[Any]
) -> list[Any]:
    """``inference`` ``ObjectDetectionInferenceResponse`` objects for detections in frames."""
    from inference.core.entities.responses.inference import (
        InferenceResponseImage,
        ObjectDetectionInferenceResponse,
        ObjectDetectionPrediction,
    )

    classes = runner.classes
    responses = []
    for frame, found in zip(frames, detections, strict=False):
        height, width = frame.shape[:2]
        predictions = []
        for (x1, y1, x2, y2), score, class_id in zip(
            found.xyxy.tolist(), found.confidence.tolist(), found.class_id.tolist(), strict=False
        ):
            predictions.append(
                ObjectDetectionPrediction(
                    **{
                        "x": (x1 + x2) / 2,
                        "y": (y1 + y2) / 2,
                        "width": x2 - x1,
                        "height": y2 - y1,
                        "confidence": score,
                        "class": classes[class_id] if class_id < len(classes) else str(class_id),
                        "class_id": class_id,
                    }
                )
            )
        responses.append(
            ObjectDetectionInferenceResponse(
                predictions=predictions, image=InferenceResponseImage(width=width, height=height)
            )
        )
    return responses


def inference_model_class(
    package_path: str | Path, current: Callable[[], RuntimeContext | None]
) -> type:
    """A ``inference.core.models.base.Model`` subclass serving ``package_path`` offline.

    ``inference`` builds the model itself, long after the class was registered, so the class
    asks ``current()`` (:func:`coral_inference.runtime.current`, passed in by the patch that
    registers it) for the runtime then running and loads the package on its backend with its
    decoders (``coral_inference.init`` must have run).
    """
    import numpy as np
    from inference.core.models.base import Model
    from inference.core.utils.image_utils import load_image_bgr

    class CoralLocalModel(Model):
        """A coral-inference model package served through ``inference``."""

        task_type = "object-detection"

        def __init__(self, model_id: str, api_key: str | None = None, **_: Any) -> None:
            super().__init__()
            self.model_id = model_id
            self.api_key = api_key
            context = current()
            if context is None:
                raise RuntimeError(f"model {model_id!r}: call coral_inference.init() first")
            self.runner = open_model(package_path, context)
            self.model_times = context.services.model_times
            self.class_names = list(self.runner.classes)
            self.batch_size = None

        def infer(
            self,
            image: Any,
            confidence: float | None = None,
            iou_threshold: float | None = None,
            max_detections: int | None = None,
            class_filter: list[str] | None = None,
            **_: Any,
        ) -> list[Any]:
            started = time.perf_counter()
            images = image if isinstance(image, list) else [image]
            frames = [load_image_bgr(item) for item in images]
            found = self.runner.predict_batch(
                frames, confidence=confidence, iou=iou_threshold, max_detections=max_detections
            )
            if class_filter:
                wanted = [i for i, name in enumerate(self.runner.classes) if name in class_filter]
                found = [d.select(np.isin(d.class_id, wanted)) for d in found]
            responses = detections_to_responses(self.runner, frames, found)
            per_frame = (time.perf_counter() - started) / max(1, len(frames))
            self.model_times.record(per_frame)
            for response in responses:
                response.time = per_frame
            return responses

        def clear_cache(self, delete_from_disk: bool = True) -> None:
            self.runner.close()

    CoralLocalModel.__qualname__ = f"CoralLocalModel[{Path(package_path).name}]"
    return CoralLocalModel
