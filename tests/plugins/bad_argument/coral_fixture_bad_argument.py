"""A plugin whose hookimpl asks for an argument the spec does not have."""

from coral_inference import hookimpl


@hookimpl
def register_backend(register, device_index):
    pass
