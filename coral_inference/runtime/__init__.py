"""The host layer: ``init(config) -> RuntimeContext`` and ``shutdown()``.

Where things are: :mod:`~coral_inference.runtime.hookspecs` (the plugin contract),
:mod:`~coral_inference.runtime.plugins` (discovery, gating, isolation),
:mod:`~coral_inference.runtime.records` (each plugin's status),
:mod:`~coral_inference.runtime.legacy_spec` (the original plans' names and ``PluginSpec``),
:mod:`~coral_inference.runtime.config` and :mod:`~coral_inference.runtime.options` (typed
options, the one merge), :mod:`~coral_inference.runtime.backends`,
:mod:`~coral_inference.runtime.patching`, :mod:`~coral_inference.runtime.compat`.

Importing this package is cheap: the names below load their modules on first use, so the
metadata-only commands (``coral plugins list``) never pay for the whole runtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coral_inference.lazy import submodule_attributes

if TYPE_CHECKING:
    from coral_inference.runtime.context import RuntimeContext
    from coral_inference.runtime.lifecycle import current, init, shutdown
    from coral_inference.runtime.platform_probe import detect_platform

_LAZY = {
    "RuntimeContext": "context",
    "init": "lifecycle",
    "shutdown": "lifecycle",
    "current": "lifecycle",
    "detect_platform": "platform_probe",
    "DEVICE_TREE_COMPATIBLE": "platform_probe",
    "JETSON_RELEASE": "platform_probe",
}
__all__ = ["RuntimeContext", "current", "detect_platform", "init", "shutdown"]
__getattr__ = submodule_attributes(__name__, _LAZY)
