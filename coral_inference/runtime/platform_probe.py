"""Which chip platform this is: Rockchip (rknn), NVIDIA Jetson, or plain CPU."""

from __future__ import annotations

from pathlib import Path

DEVICE_TREE_COMPATIBLE = Path("/proc/device-tree/compatible")
JETSON_RELEASE = Path("/etc/nv_tegra_release")


def detect_platform(
    requested: str = "auto",
    *,
    device_tree: Path = DEVICE_TREE_COMPATIBLE,
    jetson_release: Path = JETSON_RELEASE,
) -> str:
    """``rknn`` on Rockchip boards, ``jetson`` on NVIDIA Tegra, else ``cpu``; a non-``auto``
    request wins."""
    if requested != "auto":
        return requested
    try:
        compatible = device_tree.read_bytes().lower()
    except OSError:
        compatible = b""
    if b"rockchip" in compatible:
        return "rknn"
    if jetson_release.exists() or b"nvidia,tegra" in compatible:
        return "jetson"
    return "cpu"
