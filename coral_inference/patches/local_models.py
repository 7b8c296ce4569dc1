"""Patch ``local_models``: serve ``models.<id>`` packages through ``inference``'s registry.

``inference`` resolves a model id to (task, model type) through ``GENERIC_MODELS`` before asking
the Roboflow API, and a model type to a class through ``ROBOFLOW_MODEL_TYPES``. Adding one entry
to each per configured package makes ``get_model``, ``InferencePipeline.init(model_id=...)`` and
the HTTP API load the package on the runtime's backend, with no API key and no download.
"""

from __future__ import annotations

from pathlib import Path

from coral_inference import hookimpl
from coral_inference.patches import TESTED_INFERENCE
from coral_inference.runtime.patching import Patch, PatchContext, Patcher, PatchRecord

TASK = "object-detection"
GENERIC_MODELS = "inference.core.registries.roboflow:GENERIC_MODELS"
MODEL_TYPES = "inference.models.utils:ROBOFLOW_MODEL_TYPES"


def model_type_key(model_id: str) -> tuple[str, str]:
    return TASK, f"coral-local/{model_id}"


class LocalModelsPatch(Patch):
    name = "local_models"
    description = "resolve models.<id> packages offline in get_model, pipelines and the HTTP API"
    inference = TESTED_INFERENCE
    targets = (GENERIC_MODELS, MODEL_TYPES)

    def not_needed(self, context: PatchContext) -> str | None:
        return None if context.config.section("models") else "no models.<id> configured"

    def settings(self, context: PatchContext) -> object:
        return sorted(context.config.section("models").items())

    def install(self, patcher: Patcher, targets: dict, context: PatchContext) -> None:
        from coral_inference.models.inference_models import inference_model_class
        from coral_inference.runtime import current

        for model_id, path in sorted(context.config.section("models").items()):
            key = model_type_key(model_id)
            patcher.set_item(targets[GENERIC_MODELS], model_id, key)
            patcher.set_item(targets[MODEL_TYPES], key, inference_model_class(Path(path), current))


@hookimpl
def apply_patch(context: PatchContext) -> PatchRecord:
    return context.apply(LocalModelsPatch())
