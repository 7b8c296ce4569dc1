"""A frame sink that raises on every frame (on when services.frame_sink_raiser.enabled)."""

from coral_inference import hookimpl
from coral_inference.runtime.options import Option, Section


@hookimpl
def declare_options(declare):
    declare(
        "services.frame_sink_raiser",
        Section("test sink that raises", {"enabled": Option("bool", False, "register it")}),
    )


class RaisingSink:
    def on_frame(self, result):
        raise RuntimeError(f"raiser sink refuses frame {result.frame_id}")

    def close(self):
        pass


@hookimpl
def register_frame_sinks(register, config):
    if config.get("services.frame_sink_raiser.enabled"):
        register(lambda pipeline: RaisingSink())
