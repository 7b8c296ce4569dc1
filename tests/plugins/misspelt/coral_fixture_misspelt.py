"""A plugin implementing a hook name that does not exist."""

from coral_inference import hookimpl


@hookimpl
def register_workflow_blocks(register):  # the spec is register_workflow_block
    pass
