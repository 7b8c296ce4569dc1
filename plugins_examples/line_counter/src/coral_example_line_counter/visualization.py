"""``coral/line_counter_visualization@v1``: draws each line and its in/out counts on the frame."""

from __future__ import annotations

from typing import Any, Literal

import cv2
from inference.core.workflows.execution_engine.entities.base import (
    OutputDefinition,
    WorkflowImageData,
)
from inference.core.workflows.execution_engine.entities.types import (
    DICTIONARY_KIND,
    IMAGE_KIND,
    LIST_OF_VALUES_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import (
    BlockResult,
    WorkflowBlock,
    WorkflowBlockManifest,
)
from pydantic import ConfigDict, Field

from coral_example_line_counter.counting import parse_lines

LINE_COLOUR = (0, 200, 255)  # BGR
TEXT_COLOUR = (255, 255, 255)


class LineCounterVisualizationManifest(WorkflowBlockManifest):
    """A step: ``{"type": "coral/line_counter_visualization@v1", "name": "drawn",
    "image": "$inputs.image", "lines": [...], "count_in": "$steps.lines.count_in",
    "count_out": "$steps.lines.count_out"}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "name": "Coral Line Counter Visualization",
            "version": "v1",
            "short_description": "Draw lines and their in/out counts.",
            "long_description": "Draws every line of coral/line_counter@v1 with its counts.",
            "license": "Apache-2.0",
            "block_type": "visualization",
        }
    )
    type: Literal["coral/line_counter_visualization@v1"]
    image: Selector(kind=[IMAGE_KIND]) = Field(description="The frame to draw on.")
    lines: list[Any] | Selector(
        kind=[LIST_OF_VALUES_KIND]
    ) = Field(description="The same lines as the counter's.")
    count_in: Selector(kind=[DICTIONARY_KIND]) = Field(description="The counter's count_in.")
    count_out: Selector(kind=[DICTIONARY_KIND]) = Field(description="The counter's count_out.")

    @classmethod
    def describe_outputs(cls) -> list[OutputDefinition]:
        return [OutputDefinition(name="image", kind=[IMAGE_KIND])]

    @classmethod
    def get_execution_engine_compatibility(cls) -> str | None:
        return ">=1.3.0,<2.0.0"


class LineCounterVisualizationBlockV1(WorkflowBlock):
    """Draws on a copy of the frame; the input image is left alone."""

    @classmethod
    def get_manifest(cls) -> type[WorkflowBlockManifest]:
        return LineCounterVisualizationManifest

    def run(
        self,
        image: WorkflowImageData,
        lines: list[Any],
        count_in: dict[str, int],
        count_out: dict[str, int],
    ) -> BlockResult:
        canvas = image.numpy_image.copy()
        for line in parse_lines(lines):
            start = tuple(int(round(v)) for v in line.start)
            end = tuple(int(round(v)) for v in line.end)
            cv2.line(canvas, start, end, LINE_COLOUR, 2, cv2.LINE_AA)
            label = (
                f"{line.name}: in {count_in.get(line.name, 0)} out {count_out.get(line.name, 0)}"
            )
            origin = (min(start[0], end[0]) + 4, min(start[1], end[1]) + 16)
            cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3)
            cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, TEXT_COLOUR, 1)
        return {
            "image": WorkflowImageData.copy_and_replace(origin_image_data=image, numpy_image=canvas)
        }
