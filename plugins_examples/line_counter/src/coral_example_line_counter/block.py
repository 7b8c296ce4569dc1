"""``coral/line_counter@v1``: in/out counts per line and per video from tracked detections.

Imports ``inference``'s workflows engine at module level; only the plugin's hook imports this.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import supervision as sv
from inference.core.workflows.execution_engine.entities.base import (
    OutputDefinition,
    WorkflowImageData,
)
from inference.core.workflows.execution_engine.entities.types import (
    DICTIONARY_KIND,
    IMAGE_KIND,
    INSTANCE_SEGMENTATION_PREDICTION_KIND,
    INTEGER_KIND,
    LIST_OF_VALUES_KIND,
    OBJECT_DETECTION_PREDICTION_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import (
    BlockResult,
    WorkflowBlock,
    WorkflowBlockManifest,
)
from pydantic import ConfigDict, Field

from coral_example_line_counter.counting import VideoCounters, parse_lines

ANCHORS = ("CENTER", "BOTTOM_CENTER", "TOP_CENTER", "CENTER_LEFT", "CENTER_RIGHT")


class LineCounterManifest(WorkflowBlockManifest):
    """A step: ``{"type": "coral/line_counter@v1", "name": "lines", "image": "$inputs.image",
    "detections": "$steps.tracker.tracked_detections",
    "lines": [{"name": "door", "start": [320, 0], "end": [320, 480]}]}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "name": "Coral Line Counter",
            "version": "v1",
            "short_description": "Count tracked objects crossing several lines, per video.",
            "long_description": (
                "Counts, for every line and every video, how many tracked objects crossed it in "
                "each direction (`in`: from the right of start->end to its left as drawn on "
                "screen, as inference's line counter). Tracks unseen for `forget_after_frames` "
                "frames are forgotten, so memory stays bounded on endless streams."
            ),
            "license": "Apache-2.0",
            "block_type": "analytics",
        }
    )
    type: Literal["coral/line_counter@v1"]
    image: Selector(kind=[IMAGE_KIND]) = Field(
        description="The frame (its video identifier keeps videos apart).",
        examples=["$inputs.image"],
    )
    detections: Selector(
        kind=[OBJECT_DETECTION_PREDICTION_KIND, INSTANCE_SEGMENTATION_PREDICTION_KIND]
    ) = Field(
        description="Tracked detections (with tracker_id), e.g. from roboflow_core/byte_tracker.",
        examples=["$steps.tracker.tracked_detections"],
    )
    lines: list[Any] | Selector(kind=[LIST_OF_VALUES_KIND]) = Field(
        description="Lines: [{'name': 'door', 'start': [x, y], 'end': [x, y]}, ...] in pixels.",
        examples=[[{"name": "door", "start": [320, 0], "end": [320, 480]}]],
    )
    triggering_anchor: Literal[ANCHORS] = Field(  # type: ignore[valid-type]
        default="CENTER", description="The point of each box that must cross."
    )
    forget_after_frames: int = Field(
        default=30, ge=1, description="Forget a track after this many frames without it."
    )

    @classmethod
    def describe_outputs(cls) -> list[OutputDefinition]:
        return [
            OutputDefinition(name="count_in", kind=[DICTIONARY_KIND]),
            OutputDefinition(name="count_out", kind=[DICTIONARY_KIND]),
            OutputDefinition(name="tracked_entries", kind=[INTEGER_KIND]),
        ]

    @classmethod
    def get_execution_engine_compatibility(cls) -> str | None:
        return ">=1.3.0,<2.0.0"


def _video_id(image: Any) -> str:
    metadata = getattr(image, "video_metadata", None)
    identifier = getattr(metadata, "video_identifier", None)
    return str(identifier) if identifier is not None else "default"


class LineCounterBlockV1(WorkflowBlock):
    """One instance per compiled workflow; its counters hold the state of every video."""

    def __init__(self) -> None:
        self._counters: VideoCounters | None = None

    @classmethod
    def get_manifest(cls) -> type[WorkflowBlockManifest]:
        return LineCounterManifest

    def run(
        self,
        image: WorkflowImageData,
        detections: sv.Detections,
        lines: list[Any],
        triggering_anchor: str = "CENTER",
        forget_after_frames: int = 30,
    ) -> BlockResult:
        if self._counters is None or self._counters.forget_after_frames != forget_after_frames:
            self._counters = VideoCounters(forget_after_frames=forget_after_frames)
        parsed = parse_lines(lines)
        if len(detections) and detections.tracker_id is None:
            raise ValueError(
                "coral/line_counter@v1 needs tracked detections (tracker_id): put "
                "roboflow_core/byte_tracker before it"
            )
        tracker_ids = (
            detections.tracker_id if detections.tracker_id is not None else np.empty(0, int)
        )
        points = detections.get_anchors_coordinates(sv.Position(triggering_anchor))
        video = _video_id(image)
        counts = self._counters.update(video, parsed, np.asarray(tracker_ids), points)
        return {
            "count_in": {name: c["in"] for name, c in counts.items()},
            "count_out": {name: c["out"] for name, c in counts.items()},
            "tracked_entries": self._counters.tracked_entries(video),
        }
