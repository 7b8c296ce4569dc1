"""Rockchip SoC names: which boards the backend supports, how many NPU cores they have, and
which ``.rknn`` targets run on which SoC.

The SoC is read from the device tree's ``compatible`` list (NUL-separated strings such as
``radxa,rock-5b\\0rockchip,rk3588\\0``); the path is a parameter so tests can hand in their own.
"""

from __future__ import annotations

import re
from pathlib import Path

DEVICE_TREE_COMPATIBLE = Path("/proc/device-tree/compatible")

#: Base SoCs the backend supports (``s``/``f`` variants such as rk3588s map onto these).
SUPPORTED_SOCS = ("rk3562", "rk3566", "rk3568", "rk3576", "rk3588")
#: NPU cores per base SoC (RK3588: three 2-TOPS cores; RK3576: two; the rest: one).
NPU_CORES = {"rk3562": 1, "rk3566": 1, "rk3568": 1, "rk3576": 2, "rk3588": 3}
#: SoCs sharing one NPU, so a model built for either runs on both.
_SAME_NPU = ({"rk3566", "rk3568"},)

_ROCKCHIP = re.compile(r"^rockchip,(rk\d{4}[a-z]?)$")
_SOC = re.compile(r"^(rk\d{4})([sf]?)$")


def compatible_strings(device_tree: Path = DEVICE_TREE_COMPATIBLE) -> list[str]:
    """The device tree's ``compatible`` entries, lower-cased; empty when there is none."""
    try:
        raw = device_tree.read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace").strip().lower() for part in raw.split(b"\0") if part]


def rockchip_soc(compatible: list[str]) -> str | None:
    """The Rockchip SoC named in ``compatible`` (e.g. ``rk3588s``), or None if not Rockchip."""
    for entry in compatible:
        match = _ROCKCHIP.match(entry)
        if match:
            return match.group(1)
    return None


def base_soc(soc: str) -> str | None:
    """``rk3588s`` -> ``rk3588``; None for a name outside :data:`SUPPORTED_SOCS`."""
    match = _SOC.match(soc.lower())
    if not match or match.group(1) not in SUPPORTED_SOCS:
        return None
    return match.group(1)


def npu_cores(soc: str) -> int:
    """NPU cores of ``soc`` (1 for anything unknown)."""
    return NPU_CORES.get(base_soc(soc) or "", 1)


def runs_on(target: str, soc: str) -> bool:
    """Whether a ``.rknn`` built for ``target`` runs on ``soc``."""
    built, here = base_soc(target), base_soc(soc)
    if built is None or here is None:
        return False
    return built == here or any({built, here} <= group for group in _SAME_NPU)
