"""What the board offers the backend: CPU architecture, SoC, ``rknnlite`` and ``librknnrt.so``.

:func:`probe_board` gathers it without importing ``rknnlite`` (``importlib.util.find_spec``
only), so ``coral plugins list`` and ``coral doctor`` stay cheap. Every path is a parameter:
tests probe a fake device tree and library directory.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from coral_inference.runtime.backends import Availability

from .soc import (
    DEVICE_TREE_COMPATIBLE,
    SUPPORTED_SOCS,
    base_soc,
    compatible_strings,
    npu_cores,
    rockchip_soc,
)

LIBRKNNRT = "librknnrt.so"
LIBRARY_DIRS = (
    Path("/usr/lib"),
    Path("/usr/lib/aarch64-linux-gnu"),
    Path("/usr/lib64"),
    Path("/usr/local/lib"),
)
NPU_DEBUG_DIR = Path("/sys/kernel/debug/rknpu")
#: Older vendor kernels expose the same files under /proc/debug/rknpu.
NPU_PROC_DIR = Path("/proc/debug/rknpu")
NPU_MODULE_VERSION = Path("/sys/module/rknpu/version")
INSTALL_LITE = "pip install rknn-toolkit-lite2 (aarch64 Linux wheels, Python 3.8-3.12)"
INSTALL_LIBRKNNRT = (
    "copy librknnrt.so from Rockchip's rknn-toolkit2 release "
    "(rknpu2/runtime/Linux/librknn_api/aarch64/librknnrt.so) to /usr/lib and run ldconfig"
)

#: What to do with an ONNX model package on a machine that is not the board.
OFF_BOARD_ADVICE = (
    "On this machine, run ONNX model packages (folders made by coral models import-onnx) with "
    "`coral run --model PACKAGE --backend onnx --source VIDEO`, and convert one for the board "
    f"with `coral rknn convert PACKAGE OUT --target SOC` (SOC: {', '.join(SUPPORTED_SOCS)}), "
    "then run OUT on the board with --backend rknn"
)


@dataclass(frozen=True)
class Board:
    """A snapshot of the machine as the RKNN backend sees it."""

    machine: str
    system: str
    compatible: tuple[str, ...]
    soc: str | None
    rknnlite_installed: bool
    librknnrt: Path | None
    library_dirs: tuple[Path, ...] = field(default=LIBRARY_DIRS)

    @property
    def base_soc(self) -> str | None:
        return base_soc(self.soc) if self.soc else None

    def availability(self) -> Availability:
        """Whether ``rknnlite`` can run here, or the first reason it cannot and what to do."""
        if self.system != "Linux" or self.machine not in ("aarch64", "arm64"):
            return Availability(
                False,
                f"this is {self.system} {self.machine}, not an aarch64 Linux Rockchip board: the "
                f"RKNN backend runs on the board. {OFF_BOARD_ADVICE}",
            )
        if self.soc is None:
            found = ", ".join(self.compatible) or "no /proc/device-tree/compatible"
            return Availability(False, f"not a Rockchip SoC (device tree: {found})")
        if self.base_soc is None:
            return Availability(
                False,
                f"Rockchip {self.soc} has no supported NPU (supported: "
                f"{', '.join(SUPPORTED_SOCS)} and their s/f variants)",
            )
        if not self.rknnlite_installed:
            return Availability(False, f"rknnlite is not installed: {INSTALL_LITE}")
        if self.librknnrt is None:
            searched = ", ".join(str(d) for d in self.library_dirs)
            return Availability(
                False, f"{LIBRKNNRT} not found (searched {searched}): {INSTALL_LIBRKNNRT}"
            )
        return Availability(True, f"{self.soc} NPU, {self.librknnrt}")


def find_library(dirs: Sequence[Path]) -> Path | None:
    """The first ``librknnrt.so`` in ``dirs``."""
    for directory in dirs:
        candidate = directory / LIBRKNNRT
        if candidate.is_file():
            return candidate
    return None


def library_dirs() -> tuple[Path, ...]:
    """``LD_LIBRARY_PATH`` entries, then the usual system library directories."""
    extra = [Path(p) for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
    return (*extra, *LIBRARY_DIRS)


def probe_board(
    *,
    device_tree: Path = DEVICE_TREE_COMPATIBLE,
    machine: str | None = None,
    system: str | None = None,
    dirs: Sequence[Path] | None = None,
    rknnlite_installed: bool | None = None,
) -> Board:
    """Probe this machine (every argument overrides one probe, for tests)."""
    compatible = compatible_strings(device_tree)
    dirs = tuple(dirs) if dirs is not None else library_dirs()
    if rknnlite_installed is None:
        try:
            rknnlite_installed = importlib.util.find_spec("rknnlite") is not None
        except (ImportError, ValueError):
            rknnlite_installed = False
    return Board(
        machine=machine or platform.machine(),
        system=system or platform.system(),
        compatible=tuple(compatible),
        soc=rockchip_soc(compatible),
        rknnlite_installed=rknnlite_installed,
        librknnrt=find_library(dirs),
        library_dirs=dirs,
    )


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip() or None
    except OSError:
        return None


_RT_VERSION = re.compile(rb"librknnrt version: ([0-9][^\s\x00]*(?: \([^)\x00]*\))?)")


def librknnrt_version(library: Path | None) -> str | None:
    """The version string compiled into ``librknnrt.so`` (``librknnrt version: 2.3.0 (...)``)."""
    if library is None:
        return None
    try:
        data = library.read_bytes()
    except OSError:
        return None
    match = _RT_VERSION.search(data)
    return match.group(1).decode(errors="replace") if match else "unknown (no version string)"


def distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _first_readable(paths: Sequence[Path]) -> str | None:
    return next((text for text in map(_read_text, paths) if text), None)


def board_report(
    board: Board, *, debug_dir: Path = NPU_DEBUG_DIR, proc_dir: Path = NPU_PROC_DIR
) -> dict[str, str]:
    """What ``coral doctor`` shows about the NPU: SoC, driver, runtime versions, cores, load."""
    status = board.availability()
    driver = _first_readable([debug_dir / "version", proc_dir / "version", NPU_MODULE_VERSION])
    load = _first_readable([debug_dir / "load", proc_dir / "load"])
    return {
        "soc": board.soc or "not a Rockchip board",
        "npu_cores": str(npu_cores(board.soc)) if board.base_soc else "-",
        "npu_driver": driver or "not readable (needs the rknpu driver; root for debugfs)",
        "librknnrt": (
            f"{librknnrt_version(board.librknnrt)} at {board.librknnrt}"
            if board.librknnrt
            else "not found"
        ),
        "rknn_toolkit_lite2": distribution_version("rknn-toolkit-lite2") or "not installed",
        "npu_load": load
        or "not readable (/sys/kernel/debug/rknpu/load: mount debugfs, run as root)",
        "status": ("available: " if status.available else "unavailable: ") + status.reason,
    }
