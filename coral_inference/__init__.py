"""coral-inference: run Roboflow ``inference`` on edge chips through explicit plugins.

Importing this package has no side effects: call :func:`init` to load plugins and apply patches,
and :func:`shutdown` to revert them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from coral_inference.runtime.hookspecs import hookimpl, hookspec

if TYPE_CHECKING:
    from coral_inference.runtime import RuntimeContext

__all__ = ["hookimpl", "hookspec", "init", "shutdown"]


def init(config: Any = None) -> RuntimeContext:
    """Load plugins, register backends, apply patches. See :func:`coral_inference.runtime.init`."""
    from coral_inference import runtime

    return runtime.init(config)


def shutdown() -> None:
    """Revert every patch. See :func:`coral_inference.runtime.shutdown`."""
    from coral_inference import runtime

    runtime.shutdown()
