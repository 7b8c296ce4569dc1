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

from coral_inference.runtime import compat, patching, workflows_bridge
from coral_inference.runtime.config import RuntimeDescriptor, load_config
from coral_inference.runtime.context import RuntimeContext
from coral_inference.runtime.platform_probe import detect_platform
from coral_inference.runtime.plugins import PluginManager
from coral_inference.services.runtime_services import RuntimeServices

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
    (defaults + ``CORAL_*`` env). Calling it again closes the previous runtime's services and
    builds new ones; a patch is never applied twice, and patches no longer enabled are reverted.
    """
    global _current
    descriptor = _as_descriptor(config)
    with _lock:
        previous = _current
        if previous is not None:
            previous.plugin_manager.runtime_stopping(previous)
        context = _build(descriptor)
        _current = context
        if previous is not None:
            previous.services.close()
        context.plugin_manager.runtime_started(context)
        return context


def _build(config: RuntimeDescriptor) -> RuntimeContext:
    manager = config.plugin_manager
    if manager is None or not manager.serves(config):
        manager = PluginManager.from_config(config)
    manager.in_use = True
    inference = compat.installed_inference()
    context = RuntimeContext(
        config=config,
        platform=detect_platform(config.get("platform", "auto")),
        inference=inference,
        plugin_manager=manager,
        services=RuntimeServices(config),
    )
    messages = context.log_messages
    messages.append(f"platform {context.platform}; inference {inference.describe()}")
    # The sections were checked when the config was loaded; the hook runs again here so a
    # plugin declaring a path another already took is recorded in this runtime too.
    manager.declare_options()

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

    for name in manager.register_decoders(context.decoders):
        messages.append(f"decoder {name!r} registered")

    # Before the patches: the frame_sinks patch opens these for every pipeline built later.
    context.services.frame_sinks.registrations = manager.register_frame_sinks(config)
    for registration in context.services.frame_sinks.registrations:
        messages.append(f"frame sink registered by plugin {registration.plugin!r}")

    patch_context = patching.PatchContext(
        config, inference, context.platform, services=context.services, backends=context.backends
    )
    for record in manager.apply_patches(patch_context):
        context.patches[record.name] = record
        messages.append(f"patch {record.name}: {record.status} ({record.reason})")
    for stale in set(patching.applied_patches()) - set(context.patches):
        patching.revert(stale)
        messages.append(f"patch {stale}: reverted (no longer enabled)")

    sinks = context.services.frame_sinks.registrations
    if sinks and not context.is_patch_enabled("frame_sinks"):
        owners = ", ".join(sorted({r.plugin for r in sinks}))
        patch = context.patches.get("frame_sinks")
        why = patch.reason if patch is not None else "not loaded (plugins.only / disabled)"
        warning = (
            f"frame sinks of {owners} get no frames: the frame_sinks patch is off ({why}); "
            "enable it (add frame_sinks to plugins.only)"
        )
        log.warning("coral-inference: %s", warning)
        messages.append(warning)

    context.workflow_blocks = manager.register_workflow_blocks()
    workflows_bridge.install(context.workflow_blocks)
    if context.workflow_blocks:
        messages.append(f"{len(context.workflow_blocks)} workflow block(s) bridged into inference")

    for problem in context.problems():
        log.warning("coral-inference: %s", problem)
        messages.append(problem)
    return context


def shutdown() -> None:
    """Revert every patch, close the runtime's services and forget the runtime; safe to call
    any number of times. The context ``init`` returned stays readable (its counters)."""
    global _current
    with _lock:
        context = _current
        if context is not None:
            context.plugin_manager.runtime_stopping(context)
        patching.revert_all()
        workflows_bridge.uninstall()
        if context is not None:
            context.services.close()
        _current = None
