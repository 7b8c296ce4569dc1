"""Fixture plugins for the runtime's per-runtime registries and typed options.

* ``decoders``: registers the decoder ``fixture_boxes`` and declares ``services.fixture_decoders``
  (typed: ``interval`` a number >= 0, ``label`` a string);
* ``clash``: registers a *different* ``fixture_boxes``: a record against it, never an exception;
* ``wrapper``: a ``hookwrapper`` implementation, which the runtime refuses (``invalid``).
"""

from types import SimpleNamespace

from coral_inference import hookimpl
from coral_inference.runtime.options import Option, Section

SECTION = Section(
    "fixture service settings",
    {
        "interval": Option("float", 1.0, "seconds between ticks", minimum=0),
        "label": Option("str", "tick", "what a tick is called"),
    },
)


@hookimpl
def _register_decoder(register):
    from coral_inference.models.decoders import decode_yolov8  # numpy: only when registering

    register("fixture_boxes", decode_yolov8)


@hookimpl
def _declare_options(declare):
    declare("services.fixture_decoders", SECTION)


@hookimpl
def _register_other_decoder(register):
    from coral_inference.models.decoders import decode_yolov5

    register("fixture_boxes", decode_yolov5)


@hookimpl(hookwrapper=True)
def _runtime_started(context):
    yield


decoders = SimpleNamespace(register_decoder=_register_decoder, declare_options=_declare_options)
clash = SimpleNamespace(register_decoder=_register_other_decoder)
wrapper = SimpleNamespace(runtime_started=_runtime_started)
