"""The manifest of an RKNN package made from an ONNX package, shared by the converter and the
stand-in's test packages.

The ``.rknn`` takes what the ONNX twin takes *before* normalisation: the same resize, padding
and channel order, as raw uint8 pixels in NHWC; the normalisation is baked into the ``.rknn``
(rknn-toolkit2's ``mean_values`` / ``std_values``, see :func:`toolkit_normalisation`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from coral_inference.models.manifest import ModelManifest, RknnSpec
from coral_inference.models.package import ModelPackage, write_package

RKNN_WEIGHTS = "model.rknn"
ONNX_TWIN = "model.onnx"


def rknn_manifest(
    source: ModelManifest,
    *,
    size: tuple[int, int],
    target: str,
    quantization: str,
    toolkit_version: str,
    decoder: dict | None = None,
) -> ModelManifest:
    """The manifest of the converted package (``decoder`` replaces the source's, e.g. for the
    split-head layout)."""
    twin_input = dataclasses.replace(source.input, size=size)
    raw = dataclasses.replace(
        twin_input,
        layout="NHWC",
        dtype="uint8",
        scale=1.0,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
    )
    decoder_spec = source.decoder
    if decoder is not None:
        decoder_spec = dataclasses.replace(
            source.decoder,
            type=decoder["type"],
            options={k: v for k, v in decoder.items() if k != "type"},
        )
    return dataclasses.replace(
        source,
        weights={"rknn": RKNN_WEIGHTS},
        input=raw,
        decoder=decoder_spec,
        rknn=RknnSpec(
            target=target,
            quantization=quantization,
            toolkit_version=toolkit_version,
            onnx=ONNX_TWIN,
            onnx_input=twin_input,
        ),
    )


def toolkit_normalisation(manifest: ModelManifest) -> tuple[list[float], list[float]]:
    """``mean_values`` / ``std_values`` for rknn-toolkit2's ``config()``, in 0..255 pixel units:
    ``(pixel * scale - mean) / std == (pixel - mean / scale) / (std / scale)``."""
    spec = manifest.input
    return (
        [m / spec.scale for m in spec.mean],
        [s / spec.scale for s in spec.std],
    )


def write_rknn_package(
    out_dir: Path, manifest: ModelManifest, rknn_file: Path, onnx_twin: Path
) -> ModelPackage:
    """Write the package: the ``.rknn``, its ONNX twin and ``model.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    twin = out_dir / ONNX_TWIN
    if not (twin.exists() and twin.samefile(onnx_twin)):
        twin.write_bytes(Path(onnx_twin).read_bytes())
    return write_package(out_dir, manifest, {"rknn": rknn_file})
