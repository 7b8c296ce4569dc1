"""A backend plugin running the RKNN backend on :mod:`.fake_rknnlite` (x86 tests and demos).

Load it in place of the real plugin, e.g. ``coral run --backend rknn --set
'plugins.disabled=["rknn"]' --set 'backends.modules=["coral_inference_rknn.testing.standin"]'``:
the backend named ``rknn`` then runs on a simulated RK3588 (three cores, kept busy by the
``rknn_pipeline`` patch plugin installed with the distribution) whose outputs come from the
package's ONNX twin. :func:`build_standin_package` makes such a package from an ONNX one.
"""

from __future__ import annotations

from pathlib import Path

from coral_inference import hookimpl
from coral_inference.models.package import ModelPackage, load_package

from ..backend import RknnBackend
from ..board import Board
from ..packaging import rknn_manifest, write_rknn_package
from ..plugin import declare_options, runtime_stopping  # noqa: F401 - as with the real backend
from .fake_rknnlite import RKNN_MAGIC, FakeNpu

STANDIN_SOC = "rk3588"


def standin_board(soc: str = STANDIN_SOC) -> Board:
    """A board as the backend would probe it on an RK3588 with everything installed."""
    return Board(
        machine="aarch64",
        system="Linux",
        compatible=(f"rockchip,{soc}",),
        soc=soc,
        rknnlite_installed=True,
        librknnrt=Path("/usr/lib/librknnrt.so (stand-in)"),
    )


def standin_backend(npu: FakeNpu | None = None, soc: str = STANDIN_SOC) -> RknnBackend:
    """The ``rknn`` backend on a :class:`FakeNpu` (a fresh one unless given)."""
    npu = npu or FakeNpu()
    return RknnBackend("rknn", probe=lambda: standin_board(soc), runtime=lambda: npu.factory)


def build_standin_package(
    onnx_package: ModelPackage | Path,
    out_dir: Path,
    *,
    size: tuple[int, int] = (640, 480),
    target: str = STANDIN_SOC,
) -> ModelPackage:
    """An RKNN package whose ``model.rknn`` is a placeholder the stand-in accepts, next to the
    ONNX twin it computes from (the layout ``coral rknn convert`` writes)."""
    if not isinstance(onnx_package, ModelPackage):
        onnx_package = load_package(onnx_package)
    out_dir.mkdir(parents=True, exist_ok=True)
    placeholder = out_dir / "model.rknn"
    placeholder.write_bytes(RKNN_MAGIC + b"\0stand-in: outputs come from the ONNX twin\n")
    manifest = rknn_manifest(
        onnx_package.manifest,
        size=size,
        target=target,
        quantization="fp16",
        toolkit_version="stand-in",
    )
    return write_rknn_package(out_dir, manifest, placeholder, onnx_package.weights_path("onnx"))


@hookimpl
def register_backend(register):
    """Register the ``rknn`` backend on a simulated RK3588."""
    register(standin_backend())
