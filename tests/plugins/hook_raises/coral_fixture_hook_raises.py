"""A plugin whose hook raises when called."""

from coral_inference import hookimpl


@hookimpl
def register_backend(register):
    raise RuntimeError("fixture backend exploded")
