"""``init(config) -> RuntimeContext`` and ``shutdown()``: the explicit life cycle.

Nothing happens on import. ``init`` probes versions and platform, loads plugins, collects
backends and decoders, applies patches (once per process), bridges workflow blocks and returns a
context describing all of it. ``shutdown`` reverts every patch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any

from coral_inference.models import decoders
from coral_inference.runtime import compat, patching, workflows_bridge
from coral_inference.runtime.config import RuntimeDescriptor, load_config
from coral_inference.runtime.context import RuntimeContext
from coral_inference.runtime.platform_probe import detect_platform
from coral_inference.runtime.plugins import GROUPS, PluginFilter, PluginManager

log = logging.getLogger(__name__)

_lock = threading.RLock()
_current: RuntimeContext | None = None


def current() -> RuntimeContext | None:
    """The context of the last ``init`` (None before ``init`` or after ``shutdown``)."""
    return _current


def _as_descriptor(config: Any) -> RuntimeDescriptor:
    if config is None:
        return load_config()
    if isinstance(config, RuntimeDescriptor):
        return config
    if isinstance(config, (str, os.PathLike)):
        return load_config(config)
    if isinstance(config, Mapping):
        return load_config(data=config)
    raise TypeError(f"config must be a path, a mapping or a RuntimeDescriptor, not {type(config)}")


def init(
    config: RuntimeDescriptor | Mapping[str, Any] | str | os.PathLike[str] | None = None,
) -> RuntimeContext:
    """Load plugins, register backends, apply patches; return the :class:`RuntimeContext`.

    ``config`` is a file path, a mapping of config keys, a :class:`RuntimeDescriptor`, or None
    (defaults + ``CORAL_*`` env). Calling it again re-reads plugins and config but never applies
    a patch twice; patches no longer enabled are reverted.
    """
    global _current
    descriptor = _as_descriptor(config)
    with _lock:
        if _current is not None:
            _current.plugin_manager.runtime_stopping(_current)
        context = _build(descriptor)
        _current = context
        context.plugin_manager.runtime_started(context)
        return context


def _build(config: RuntimeDescriptor) -> RuntimeContext:
    manager = PluginManager(PluginFilter.from_config(config))
    groups = [g for g in GROUPS if g != "backends" or config.get("backends.auto_discover", True)]
    manager.discover(groups)
    for module_path in config.get("backends.modules") or []:
        manager.register_path(module_path, group="backends")
    inference = compat.installed_inference()
    context = RuntimeContext(
        config=config,
        platform=detect_platform(config.get("platform", "auto")),
        inference=inference,
        plugin_manager=manager,
    )
    messages = context.log_messages
    messages.append(f"platform {context.platform}; inference {inference.describe()}")

    for plugin, adapter in manager.register_backends():
        if adapter.name in context.backends:
            messages.append(
                f"backend {adapter.name!r} from {plugin!r} ignored: already registered by "
                f"{context.backend_plugins[adapter.name]!r}"
            )
            continue
        context.backends[adapter.name] = adapter
        context.backend_plugins[adapter.name] = plugin
        messages.append(f"backend {adapter.name!r} registered by plugin {plugin!r}")

    for name, decoder in manager.register_decoders():
        decoders.register_decoder(name, decoder)
        context.decoders.append(name)

    patch_context = patching.PatchContext(config, inference, context.platform)
    for record in manager.apply_patches(patch_context):
        context.patches[record.name] = record
        messages.append(f"patch {record.name}: {record.status} ({record.reason})")
    for stale in set(patching.applied_patches()) - set(context.patches):
        patching.revert(stale)
        messages.append(f"patch {stale}: reverted (no longer enabled)")

    context.workflow_blocks = manager.register_workflow_blocks()
    workflows_bridge.install(context.workflow_blocks)
    if context.workflow_blocks:
        messages.append(f"{len(context.workflow_blocks)} workflow block(s) bridged into inference")

    for problem in context.problems():
        log.warning("coral-inference: %s", problem)
        messages.append(problem)
    return context


def shutdown() -> None:
    """Revert every patch and forget the runtime; safe to call any number of times."""
    global _current
    with _lock:
        if _current is not None:
            _current.plugin_manager.runtime_stopping(_current)
        patching.revert_all()
        workflows_bridge.uninstall()
        _current = None
