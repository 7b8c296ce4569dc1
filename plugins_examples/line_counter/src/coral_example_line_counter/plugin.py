"""Example workflow blocks: count tracked objects crossing lines, and draw the lines.

The plugin module named by the ``coral_inference.workflows`` entry point ``line_counter``.

It stays light (``coral plugins list`` imports it): the blocks import ``inference``'s workflows
engine, so they are imported inside the hook.
"""

from collections.abc import Callable

from coral_inference import hookimpl


@hookimpl
def register_workflow_block(register: Callable[[type], None]) -> None:
    """Register ``coral/line_counter@v1`` and ``coral/line_counter_visualization@v1``."""
    from coral_example_line_counter.block import LineCounterBlockV1
    from coral_example_line_counter.visualization import LineCounterVisualizationBlockV1

    register(LineCounterBlockV1)
    register(LineCounterVisualizationBlockV1)
