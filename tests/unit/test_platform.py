import pytest

from coral_inference.runtime.platform_probe import detect_platform

pytestmark = pytest.mark.core


def test_detect_platform(tmp_path):
    tree = tmp_path / "compatible"
    missing = tmp_path / "nv_tegra_release"
    assert detect_platform(device_tree=tree, jetson_release=missing) == "cpu"
    tree.write_bytes(b"radxa,rock-5b\0rockchip,rk3588\0")
    assert detect_platform(device_tree=tree, jetson_release=missing) == "rknn"
    tree.write_bytes(b"nvidia,p3768-0000+p3767-0005\0nvidia,tegra234\0")
    assert detect_platform(device_tree=tree, jetson_release=missing) == "jetson"
    assert detect_platform("cpu", device_tree=tree, jetson_release=missing) == "cpu"
