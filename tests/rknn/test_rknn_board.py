"""Board probing: every reason the backend is unavailable, SoC names, the doctor report."""

from __future__ import annotations

from pathlib import Path

import pytest

from coral_inference_rknn.board import board_report, probe_board
from coral_inference_rknn.soc import base_soc, npu_cores, rockchip_soc, runs_on


def device_tree(tmp_path: Path, *entries: str) -> Path:
    path = tmp_path / "compatible"
    path.write_bytes(b"".join(e.encode() + b"\0" for e in entries))
    return path


def lib_dir(
    tmp_path: Path, *, version: bytes = b"librknnrt version: 2.3.0 (c949ad889d@2024-11-07T11:35:33)"
) -> Path:
    directory = tmp_path / "lib"
    directory.mkdir(exist_ok=True)
    (directory / "librknnrt.so").write_bytes(b"\x7fELF...." + version + b"\0more")
    return directory


def board(tmp_path, *entries, machine="aarch64", lite=True, lib=True):
    return probe_board(
        device_tree=device_tree(tmp_path, *entries),
        machine=machine,
        system="Linux",
        dirs=[lib_dir(tmp_path)] if lib else [tmp_path / "nolib"],
        rknnlite_installed=lite,
    )


def test_rock5b_is_available(tmp_path):
    found = board(tmp_path, "radxa,rock-5b", "rockchip,rk3588")
    assert found.soc == "rk3588" and found.availability().available
    assert "rk3588" in found.availability().reason


@pytest.mark.parametrize(
    ("kwargs", "entries", "words"),
    [
        (
            {"machine": "x86_64"},
            ("rockchip,rk3588",),
            [
                "x86_64",
                "not an aarch64",
                "coral rknn convert PACKAGE OUT --target SOC",
                "coral run --model PACKAGE --backend onnx --source VIDEO",
            ],
        ),
        ({}, ("raspberrypi,4-model-b", "brcm,bcm2711"), ["not a Rockchip SoC", "brcm,bcm2711"]),
        ({}, ("rockchip,rk3399",), ["rk3399", "no supported NPU", "rk3588"]),
        (
            {"lite": False},
            ("rockchip,rk3566",),
            ["rknnlite is not installed", "pip install rknn-toolkit-lite2"],
        ),
        ({"lib": False}, ("rockchip,rk3576",), ["librknnrt.so not found", "/usr/lib", "ldconfig"]),
    ],
)
def test_unavailable_reasons_name_the_fix(tmp_path, kwargs, entries, words):
    status = board(tmp_path, *entries, **kwargs).availability()
    assert not status.available
    for word in words:
        assert word in status.reason


def test_missing_device_tree_is_not_rockchip(tmp_path):
    found = probe_board(device_tree=tmp_path / "absent", machine="aarch64", system="Linux", dirs=[])
    assert "not a Rockchip SoC" in found.availability().reason


def test_soc_variants_and_compatibility():
    assert rockchip_soc(["friendlyelec,nanopi-r6s", "rockchip,rk3588s"]) == "rk3588s"
    assert base_soc("rk3588s") == "rk3588" and base_soc("rk3568f") == "rk3568"
    assert base_soc("rk3399") is None
    assert [npu_cores(s) for s in ("rk3588s", "rk3576", "rk3566", "rk3562")] == [3, 2, 1, 1]
    assert runs_on("rk3588", "rk3588s") and runs_on("rk3566", "rk3568")
    assert not runs_on("rk3588", "rk3576") and not runs_on("rk3562", "rk3566")


def test_board_report_reads_driver_runtime_and_load(tmp_path):
    debug = tmp_path / "debug"
    debug.mkdir()
    (debug / "version").write_text("RKNPU driver: v0.9.8\n")
    (debug / "load").write_text("NPU load:  Core0: 31%, Core1:  0%, Core2: 12%,\n")
    report = board_report(board(tmp_path, "rockchip,rk3588"), debug_dir=debug, proc_dir=debug)
    assert report["soc"] == "rk3588" and report["npu_cores"] == "3"
    assert report["npu_driver"] == "RKNPU driver: v0.9.8"
    assert report["librknnrt"].startswith("2.3.0 (c949ad889d@2024-11-07T11:35:33) at ")
    assert "Core0: 31%" in report["npu_load"]
    assert report["status"].startswith("available")


def test_board_report_says_why_load_is_unreadable(tmp_path):
    report = board_report(
        board(tmp_path, "rockchip,rk3588", lib=False),
        debug_dir=tmp_path / "x",
        proc_dir=tmp_path / "y",
    )
    assert "not readable" in report["npu_load"] and report["librknnrt"] == "not found"
    assert report["status"].startswith("unavailable: librknnrt.so not found")
