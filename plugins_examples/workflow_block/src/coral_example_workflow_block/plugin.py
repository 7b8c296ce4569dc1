"""Example workflow block: the number of detections in a prediction.

The plugin module named by the ``coral_inference.workflows`` entry point ``detection_count``.

It must stay light: ``coral plugins list`` imports it. The block module imports ``inference``'s
workflows engine, so it is imported only inside the hook, when ``coral_inference.init`` runs.
"""

from collections.abc import Callable

from coral_inference import hookimpl


@hookimpl
def register_workflow_block(register: Callable[[type], None]) -> None:
    """Register the ``coral/detection_count@v1`` block."""
    from coral_example_workflow_block.block import DetectionCountBlockV1

    register(DetectionCountBlockV1)
