"""The plugin module named by the ``coral_inference.backends`` entry point ``rknn``."""

from __future__ import annotations

from coral_inference import hookimpl


@hookimpl
def register_backend(register):
    """Register the RKNN backend (``rknnlite`` is imported only when a model is loaded)."""
    from .backend import RknnBackend

    register(RknnBackend())


@hookimpl
def register_commands(cli):
    """Add ``coral rknn convert`` and ``coral rknn setup-converter``."""
    from .convert.cli import rknn

    cli.add_command(rknn)


@hookimpl
def declare_options(declare):
    """Declare ``backends.options.rknn``: core_mask, pool_size, pipeline."""
    from .options import OPTIONS, OPTIONS_PATH

    declare(OPTIONS_PATH, OPTIONS)


@hookimpl
def runtime_stopping(context):
    """Release the NPU contexts of every RKNN session this runtime's backends opened."""
    from .backend import RknnBackend

    for adapter in context.backends.values():
        if isinstance(adapter, RknnBackend):
            adapter.close_sessions()
