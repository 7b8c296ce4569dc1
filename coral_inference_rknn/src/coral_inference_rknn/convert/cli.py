"""``coral rknn convert`` and ``coral rknn setup-converter`` (added through ``register_commands``).

rknn-toolkit2 pins numpy<2 and torch<=2.4, so it lives in an environment of its own: ``convert``
runs :mod:`.tool` with that environment's Python (``--toolkit-python``, else this Python when it
has the toolkit, else the one ``setup-converter`` made at :func:`default_toolkit_dir`).
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import click

from coral_inference.app import exit_codes

from ..soc import SUPPORTED_SOCS

TOOLKIT_REQUIREMENTS = ("rknn-toolkit2==2.5.0", "setuptools<81")
#: ``--cpu-torch``: the torch rknn-toolkit2 accepts (<=2.4), CPU build, from PyTorch's own index.
CPU_TORCH = ("torch==2.4.0", "--index-url", "https://download.pytorch.org/whl/cpu")
#: What the environment weighs: PyPI's torch 2.4 is the CUDA build (nvidia-* wheels).
SIZE_CUDA_TORCH, SIZE_CPU_TORCH = "about 5.6 GB", "about 1.6 GB"
EXIT_FAILED, EXIT_USAGE, EXIT_DISAGREES = 1, 2, 3


def default_toolkit_dir() -> Path:
    """``$XDG_DATA_HOME/coral-inference/rknn-toolkit`` (``~/.local/share`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "coral-inference" / "rknn-toolkit"


def _venv_python(directory: Path) -> Path:
    return directory / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def one_liner(directory: Path) -> str:
    return f"coral rknn setup-converter {directory}"


def _own_requirement(distribution: str) -> str:
    """How to install this machine's copy of ``distribution`` into another environment: its
    source directory when it was installed from one, else ``name==version``."""
    dist = metadata.distribution(distribution)
    direct = dist.read_text("direct_url.json")
    if direct:
        url = json.loads(direct).get("url", "")
        if url.startswith("file://"):
            return unquote(urlparse(url).path)
    return f"{distribution}=={dist.version}"


class ToolkitMissing(click.ClickException):
    """rknn-toolkit2 is not installed: one ``Error:`` line, exit 1 (could not start), no usage."""

    exit_code = exit_codes.CANNOT_START


def find_toolkit_python(explicit: str | None) -> Path:
    """The Python that has rknn-toolkit2, or :class:`ToolkitMissing` saying how to get one."""
    if explicit:
        return Path(explicit)
    if importlib.util.find_spec("rknn") is not None:
        return Path(sys.executable)
    default = _venv_python(default_toolkit_dir())
    if default.exists():
        return default
    raise ToolkitMissing(
        "rknn-toolkit2 is not installed here (it needs numpy<2 and torch<=2.4, so it gets an "
        f"environment of its own): run `{one_liner(default_toolkit_dir())}` once "
        f"({SIZE_CUDA_TORCH}; add --cpu-torch for {SIZE_CPU_TORCH}), or pass --toolkit-python PATH"
    )


def _size(_ctx: Any, _param: Any, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"expected WIDTHxHEIGHT such as 640x480, got {value!r}") from None
    if width <= 0 or height <= 0:
        raise click.BadParameter(f"expected positive sizes, got {value!r}")
    return width, height


@click.group()
def rknn() -> None:
    """Rockchip NPU tools: convert ONNX packages to .rknn and check them before the board."""


@rknn.command()
@click.argument("package", type=click.Path(exists=True, path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--target", required=True, type=click.Choice(SUPPORTED_SOCS), help="The board's SoC.")
@click.option(
    "--input-size", callback=_size, help="WxH: fixes a dynamic input (the NPU runs one size)."
)
@click.option("--quantize", type=click.Choice(["fp16", "int8"]), default="fp16", show_default=True)
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="int8: a directory of calibration images.",
)
@click.option(
    "--verify",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run the simulator on these images against onnxruntime.",
)
@click.option(
    "--min-cosine",
    type=float,
    default=None,
    help="--verify fails when an output's mean cosine is below this "
    "[default: 0.99 fp16, 0.85 int8].",
)
@click.option(
    "--min-recall",
    type=float,
    default=0.9,
    show_default=True,
    help="--verify fails when fewer of onnxruntime's detections are matched (IoU>=0.5).",
)
@click.option(
    "--min-iou",
    type=float,
    default=0.75,
    show_default=True,
    help="--verify fails when the matched boxes' mean IoU is below this.",
)
@click.option("--force", is_flag=True, help="Overwrite a package already in OUT.")
@click.option("--toolkit-python", help="Python of an environment with rknn-toolkit2.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
def convert(
    package: Path,
    out: Path,
    target: str,
    input_size,
    quantize: str,
    dataset,
    verify,
    min_cosine: float | None,
    min_recall: float,
    min_iou: float,
    force: bool,
    toolkit_python: str | None,
    as_json: bool,
) -> None:
    """Convert the ONNX model PACKAGE to an RKNN package in OUT for --target."""
    if quantize == "int8" and dataset is None:
        raise click.UsageError("--quantize int8 needs --dataset DIR of calibration images")
    python = find_toolkit_python(toolkit_python)
    request = {
        "package": str(package.resolve()),
        "out": str(out.resolve()),
        "target": target,
        "input_size": list(input_size) if input_size else None,
        "quantize": quantize,
        "dataset": str(dataset.resolve()) if dataset else None,
        "verify": str(verify.resolve()) if verify else None,
        "min_cosine": min_cosine,
        "min_recall": min_recall,
        "min_iou": min_iou,
        "force": force,
    }
    result = run_tool(python, request)
    code = 0
    if "error" in result:
        code = EXIT_FAILED
    elif result.get("verify") and not result["verify"]["passed"]:
        code = EXIT_DISAGREES
    if as_json:
        click.echo(json.dumps(result))
    elif "error" in result:
        click.echo(f"Error: {result['error']}", err=True)
    else:
        click.echo(describe(result))
    sys.exit(code)


def run_tool(python: Path, request: dict[str, Any]) -> dict[str, Any]:
    """Run :mod:`.tool` with ``python``; its (and the toolkit's) output goes to stderr."""
    with tempfile.TemporaryDirectory(prefix="coral-rknn-convert-") as tmp:
        request_file, result_file = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_file.write_text(json.dumps(request))
        try:
            stderr_fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):
            stderr_fd = None
        try:
            completed = subprocess.run(
                [
                    str(python),
                    "-m",
                    "coral_inference_rknn.convert.tool",
                    str(request_file),
                    str(result_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=stderr_fd if stderr_fd is not None else subprocess.DEVNULL,
                check=False,
            )
        except OSError as exc:
            return {"error": f"cannot run {python}: {exc}"}
        if not result_file.exists():
            return {
                "error": f"{python} -m coral_inference_rknn.convert.tool exited "
                f"{completed.returncode} without a result; is coral-inference-rknn installed in "
                f"that environment? ({one_liner(default_toolkit_dir())} sets one up)"
            }
        return json.loads(result_file.read_text())


def describe(result: dict[str, Any]) -> str:
    lines = [
        f"{result['package']}: {result['target']} {result['quantization']}, input "
        f"{result['input_size'][0]}x{result['input_size'][1]}, decoder {result['decoder']}, "
        f"rknn-toolkit2 {result['toolkit_version']}, built in {result['build_seconds']} s"
    ]
    report = result.get("verify")
    if report:
        for entry in report["cosine"]:
            lines.append(
                f"  output {entry['output']}: cosine min {entry['min']} mean {entry['mean']}"
            )
        det = report["detections"]
        lines.append(
            f"  detections: {det['matched']}/{det['reference']} of onnxruntime's matched at "
            f"IoU>=0.5 (recall {det['recall']}), mean IoU {det['mean_iou']}, "
            f"{det['converted']} from the simulator, over {report['images']} images"
        )
        lines.append(
            "  verify: "
            + (
                "passed"
                if report["passed"]
                else f"FAILED (below thresholds {report['thresholds']})"
            )
        )
    return "\n".join(lines)


def _pip_install(python: Path, directory: Path, *args: str) -> None:
    """``pip install ARGS`` with the environment's ``python``; a ClickException if it fails."""
    completed = subprocess.run([str(python), "-m", "pip", "install", *args], check=False)
    if completed.returncode:
        raise click.ClickException(f"pip install into {directory} failed (see above)")


@rknn.command("setup-converter")
@click.argument("directory", type=click.Path(path_type=Path), required=False)
@click.option(
    "--cpu-torch",
    is_flag=True,
    help=f"Install torch 2.4.0's CPU build from download.pytorch.org first ({SIZE_CPU_TORCH} "
    "in all instead of 5.6 GB); needs that index reachable.",
)
def setup_converter(directory: Path | None, cpu_torch: bool) -> None:
    """Create the rknn-toolkit2 environment (default: ~/.local/share/coral-inference/rknn-toolkit).

    rknn-toolkit2 pins torch<=2.4, and PyPI's torch 2.4 is the CUDA build: the environment is
    about 5.6 GB, about 8 minutes of download at 100 Mbit/s plus a few minutes to install. With
    --cpu-torch it is about 1.6 GB (about 2 minutes at 100 Mbit/s); converting needs no GPU.
    """
    directory = directory or default_toolkit_dir()
    requirements = [
        *TOOLKIT_REQUIREMENTS,
        _own_requirement("coral-inference"),
        _own_requirement("coral-inference-rknn"),
    ]
    size = SIZE_CPU_TORCH if cpu_torch else SIZE_CUDA_TORCH
    click.echo(f"creating {directory} ({size}) with {' '.join(requirements)}", err=True)
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    python = _venv_python(directory)
    if cpu_torch:
        _pip_install(python, directory, *CPU_TORCH)
    _pip_install(python, directory, *requirements)
    click.echo(f"ready: coral rknn convert finds it, or pass --toolkit-python {python}")
