"""``coral/detection_count@v1``: how many objects a detection step found, in total and per class.

Imports ``inference``'s workflows engine at module level; only the plugin's hook imports this.
"""

from collections import Counter
from typing import Literal

import supervision as sv
from inference.core.workflows.execution_engine.entities.base import OutputDefinition
from inference.core.workflows.execution_engine.entities.types import (
    DICTIONARY_KIND,
    INSTANCE_SEGMENTATION_PREDICTION_KIND,
    INTEGER_KIND,
    KEYPOINT_DETECTION_PREDICTION_KIND,
    OBJECT_DETECTION_PREDICTION_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import (
    BlockResult,
    WorkflowBlock,
    WorkflowBlockManifest,
)
from pydantic import ConfigDict, Field


class DetectionCountManifest(WorkflowBlockManifest):
    """A step using the block: ``{"type": "coral/detection_count@v1", "name": "count",
    "predictions": "$steps.model.predictions"}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "name": "Coral Detection Count",
            "version": "v1",
            "short_description": "Count detections, in total and per class.",
            "long_description": (
                "Outputs `count`, the number of detections in `predictions`, and "
                "`count_per_class`, a mapping from class name to its number of detections."
            ),
            "license": "Apache-2.0",
            "block_type": "analytics",
        }
    )
    type: Literal["coral/detection_count@v1"]
    predictions: Selector(
        kind=[
            OBJECT_DETECTION_PREDICTION_KIND,
            INSTANCE_SEGMENTATION_PREDICTION_KIND,
            KEYPOINT_DETECTION_PREDICTION_KIND,
        ]
    ) = Field(
        description="Detections to count.",
        examples=["$steps.object_detection_model.predictions"],
    )

    @classmethod
    def describe_outputs(cls) -> list[OutputDefinition]:
        return [
            OutputDefinition(name="count", kind=[INTEGER_KIND]),
            OutputDefinition(name="count_per_class", kind=[DICTIONARY_KIND]),
        ]

    @classmethod
    def get_execution_engine_compatibility(cls) -> str | None:
        return ">=1.3.0,<2.0.0"


class DetectionCountBlockV1(WorkflowBlock):
    """Counts the detections of one image (the engine calls it once per batch element)."""

    @classmethod
    def get_manifest(cls) -> type[WorkflowBlockManifest]:
        return DetectionCountManifest

    def run(self, predictions: sv.Detections) -> BlockResult:
        labels = predictions.data.get("class_name")
        if labels is None:  # detections built without class names: count by class id
            labels = predictions.class_id if predictions.class_id is not None else []
        per_class = Counter(str(label) for label in labels)
        return {"count": len(predictions), "count_per_class": dict(per_class)}
