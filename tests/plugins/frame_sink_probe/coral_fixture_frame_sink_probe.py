"""A frame sink that writes what it received to services.frame_sink_probe.path (off unless set).

``mode``: ``count`` (takes every frame) or ``block`` (its first frame waits until the pipeline
ends, so every frame past its queue is dropped: a sink slower than any pipeline).
"""

import json

from coral_inference import hookimpl
from coral_inference.runtime.options import Option, Section


@hookimpl
def declare_options(declare):
    declare(
        "services.frame_sink_probe",
        Section(
            "test probe sink",
            {
                "path": Option(
                    "str", None, "report file; the sink is off without one", nullable=True
                ),
                "mode": Option("str", "count", "count | block", choices=("count", "block")),
                "queue_size": Option("int", 64, "the sink's queue", minimum=1),
                "with_image": Option("bool", False, "ask for the frame image"),
            },
        ),
    )


class ProbeSink:
    def __init__(self, pipeline, settings):
        self.pipeline = pipeline
        self.settings = settings
        self.frames = []

    def on_frame(self, result):
        if self.settings["mode"] == "block" and not self.frames:
            self.pipeline.ended.wait(120)
        boxes = (result.predictions or {}).get("predictions") or []
        self.frames.append(
            {
                "frame_id": result.frame_id,
                "source_id": result.source_id,
                "pipeline_id": result.pipeline_id,
                "timestamp": result.timestamp.isoformat(),
                "end_to_end_ms": result.end_to_end_ms,
                "detections": result.detections,
                "boxes": [[b["x"], b["y"], b["width"], b["height"]] for b in boxes],
                "image_shape": None if result.image is None else list(result.image.shape),
            }
        )

    def close(self):
        with open(self.settings["path"], "w", encoding="utf-8") as out:
            json.dump({"pipeline_id": self.pipeline.pipeline_id, "frames": self.frames}, out)


@hookimpl
def register_frame_sinks(register, config):
    settings = config.section("services.frame_sink_probe")
    if settings.get("path"):
        register(
            lambda pipeline: ProbeSink(pipeline, settings),
            queue_size=settings["queue_size"],
            with_image=settings["with_image"],
        )
