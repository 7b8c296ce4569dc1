"""``coral doctor``: what this machine has, what works, and what to install next."""

from __future__ import annotations

import importlib.util
import platform as _platform
from collections import Counter
from typing import Any

from coral_inference.runtime import compat
from coral_inference.runtime.backends import (
    BackendAdapter,
    BackendError,
    choose_backend,
    install_command,
)
from coral_inference.runtime.config import RuntimeDescriptor
from coral_inference.runtime.platform_probe import (
    DEVICE_TREE_COMPATIBLE,
    JETSON_RELEASE,
    detect_platform,
)
from coral_inference.runtime.plugins import PluginManager


def _device_tree() -> str:
    try:
        return (
            DEVICE_TREE_COMPATIBLE.read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
            .strip()
        )
    except OSError:
        return "not present"


def _unavailable_backend_advice(backends: dict[str, str]) -> list[str]:
    """One next step per installed backend that cannot run here: its reason says what to do."""
    prefix = "unavailable: "
    return [
        f"backend {name} is unavailable: {status.removeprefix(prefix)}"
        for name, status in backends.items()
        if status.startswith(prefix)
    ]


def _backend_choice(adapters: dict[str, BackendAdapter], preferred: list[str]) -> dict[str, str]:
    """Which backend a model would run on under ``backends.preferred``, and why."""
    report = {"preferred": ", ".join(preferred) or "-"}
    try:
        _, choice = choose_backend(adapters, preferred)
    except BackendError as exc:
        return {**report, "chosen": "none", "why": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a broken probe is reported, not raised
        return {**report, "chosen": "none", "why": f"selection failed: {exc!r}"}
    report.update(chosen=choice.chosen or "none", why=choice.reason)
    for row in choice.ranking:
        report[f"rank {row['name']}"] = f"{row['score']}: {row['reason']}"
    return report


def diagnose(config: RuntimeDescriptor) -> dict[str, Any]:
    """A JSON-able report; never imports ``inference`` itself, only plugins that load."""
    platform = detect_platform(config.get("platform", "auto"))
    inference = compat.installed_inference()
    manager = config.plugin_manager
    if manager is None or not manager.serves(config):
        manager = PluginManager.from_config(config)
    backends = {}
    details: dict[str, Any] = {}
    adapters: dict[str, BackendAdapter] = {}
    for plugin, adapter in manager.register_backends():
        adapters[adapter.name] = adapter
        try:
            if callable(getattr(adapter, "diagnostics", None)):  # optional: a chip's own report
                details[adapter.name] = adapter.diagnostics()
            status = adapter.availability()
            backends[adapter.name] = (
                f"{'available' if status.available else 'unavailable'}: "
                f"{status.reason} (plugin {plugin})"
            )
        except Exception as exc:  # noqa: BLE001
            backends[adapter.name] = f"unavailable: availability() raised {exc!r} (plugin {plugin})"
    statuses = Counter(r.status for r in manager.records.values())
    advice = []
    if not inference.installed:
        advice.append(
            "install inference: pip install './[cpu]' from a coral-inference checkout "
            "(or [gpu] / [full])"
        )
    elif importlib.util.find_spec("uvicorn") is None:
        advice.append(
            "the HTTP server / stream manager need inference's http extra: "
            f"pip install '{inference.distribution}[http]'"
        )
    if not any(v.startswith("available") for v in backends.values()):
        advice.append(
            f"no usable backend: {install_command('onnx')}"
            + (f" (or {install_command('rknn')} on the board)" if platform == "rknn" else "")
        )
    if platform == "rknn" and "rknn" not in backends:
        advice.append(f"this is a Rockchip board: {install_command('rknn')}")
    advice.extend(_unavailable_backend_advice(backends))
    for record in manager.problems():
        advice.append(f"{record.label} is {record.status}: {record.reason}")
    report = {
        "system": {
            "python": f"{_platform.python_implementation()} {_platform.python_version()}",
            "machine": f"{_platform.system()} {_platform.machine()}",
            "platform": f"{platform} (config platform: {config.get('platform')})",
            "device_tree": _device_tree(),
            "jetson_release": str(JETSON_RELEASE) if JETSON_RELEASE.exists() else "not present",
        },
        "inference": {
            "version": inference.version or "not installed",
            "distribution": inference.distribution or "-",
            "coral_inference": compat.core_version(),
        },
        "backends": backends or {"-": "no backend plugin installed"},
        "backend choice": _backend_choice(adapters, list(config.get("backends.preferred", []))),
        "plugins": dict(statuses) or {"-": "no plugins found"},
        "next_steps": advice or ["nothing: all good"],
    }
    for name, info in details.items():
        report[f"backend {name}"] = info
    return report
