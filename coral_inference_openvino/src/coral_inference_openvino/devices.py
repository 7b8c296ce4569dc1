"""What OpenVINO sees on this machine, and whether a configured ``device`` is among it."""

from __future__ import annotations

import importlib.metadata as metadata
import re
from dataclasses import dataclass
from typing import Any

from coral_inference.runtime.backends import BackendError

from .options import OPTIONS_PATH

#: Virtual devices that spread or pick among real ones: ``AUTO``, ``AUTO:GPU,CPU``, ...
VIRTUAL_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")
#: Where OpenVINO's C++ code raised, repeated at each level of a nested error.
_SOURCE_LOCATION = re.compile(r"Exception from \S+:\d+:")
#: Real device types that are accelerators (rank above the CPU under ``preferred: auto``).
ACCELERATORS = ("GPU", "NPU")


@dataclass(frozen=True)
class DeviceReport:
    """OpenVINO's version and its devices, by name (``GPU.0``), with their full names."""

    version: str
    devices: dict[str, str]

    def describe(self) -> str:
        """``CPU (Intel Core i7-1185G7), GPU (Intel Iris Xe)``, or ``none``."""
        return ", ".join(f"{name} ({full})" for name, full in self.devices.items()) or "none"

    def accelerators(self) -> list[str]:
        """The GPUs and NPUs, by name."""
        return [name for name in self.devices if name.split(".")[0] in ACCELERATORS]


def probe(core: Any) -> DeviceReport:
    """The devices an ``openvino.Core`` sees; a device whose full name cannot be read is
    still listed (its driver answered the enumeration)."""
    devices = {}
    for name in core.available_devices:
        try:
            devices[name] = str(core.get_property(name, "FULL_DEVICE_NAME"))
        except RuntimeError as exc:
            devices[name] = f"full name unreadable: {ov_message(exc)}"
    return DeviceReport(openvino_version(), devices)


def openvino_version() -> str:
    """The installed ``openvino`` distribution's version."""
    try:
        return metadata.version("openvino")
    except metadata.PackageNotFoundError:
        return "unknown"


def named_devices(device: str) -> list[str]:
    """The real devices a ``device`` setting names: ``GPU.1`` -> [GPU.1],
    ``AUTO:GPU,-CPU`` -> [GPU, CPU], ``AUTO`` -> [] (OpenVINO picks among all)."""
    head, _, tail = device.partition(":")
    if head not in VIRTUAL_DEVICES:
        return [device]
    names = []
    for part in tail.split(","):
        part = part.strip().lstrip("-").split("(")[0].strip()  # MULTI:GPU(4),CPU(2)
        if part:
            names.append(part)
    return names


def check_device(device: str, report: DeviceReport) -> None:
    """Raise one :class:`BackendError` naming the devices OpenVINO does see when ``device``
    names one it does not (``GPU`` matches ``GPU.0``, ``GPU.1``...); ``AUTO:GPU,CPU`` needs
    one of its candidates, ``MULTI:``/``HETERO:`` all of theirs."""
    if not report.devices:
        raise BackendError(
            f"OpenVINO {report.version} sees no device here (not even the CPU); is the "
            "openvino wheel complete? (pip install --force-reinstall openvino)"
        )
    named = named_devices(device)
    missing = [
        name
        for name in named
        if name not in report.devices
        and not any(seen.split(".")[0] == name for seen in report.devices)
    ]
    if device.startswith("AUTO:") and len(missing) < len(named):
        missing = []  # AUTO picks among the listed devices that are there
    if missing:
        driver = {"GPU": "Intel's GPU compute runtime", "NPU": "Intel's NPU driver"}
        hints = sorted({driver[m.split(".")[0]] for m in missing if m.split(".")[0] in driver})
        raise BackendError(
            f"{OPTIONS_PATH}.device: {', '.join(missing)} not available here; OpenVINO "
            f"{report.version} sees {report.describe()}. Set device to AUTO or one of "
            f"{', '.join(report.devices)}"
            + (f", or install {' and '.join(hints)}" if hints else "")
        )


def ov_message(exc: BaseException) -> str:
    """What an OpenVINO error says, on one line, without the C++ source locations
    (``Exception from src/inference/src/cpp/core.cpp:132:``) it nests at every level."""
    text = _SOURCE_LOCATION.sub(" ", str(exc))
    text = " ".join(text.split())
    return text[:400] if text else type(exc).__name__
