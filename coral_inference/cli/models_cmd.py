"""``coral models inspect | import-onnx``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from coral_inference.cli.common import echo_json, friendly_errors, plugin_manager_from_env


@click.group()
@click.pass_context
def models(ctx: click.Context) -> None:
    """Inspect and create local model packages (with the decoders installed plugins add)."""
    from coral_inference.models.decoders import DecoderRegistry

    ctx.obj = DecoderRegistry()  # the subcommands' decoders
    plugin_manager_from_env().register_decoders(ctx.obj)


@models.command()
@click.argument("package")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--no-load", is_flag=True, help="Only check the manifest and files; do not load the weights."
)
@friendly_errors
@click.pass_obj
def inspect(decoders: Any, package: str, as_json: bool, no_load: bool) -> None:
    """Validate PACKAGE (directory, .zip or .tar.gz), load its weights and show its manifest.

    Loading runs the weights on the runtime's backend (as coral run would), so a truncated or
    incompatible model file is caught here; --no-load skips it.
    """
    from coral_inference.models.package import load_package

    loaded = load_package(package, decoders=decoders)
    for fmt in loaded.formats:
        loaded.weights_path(fmt)  # raises a clear error when a weights file is missing
    backend = None if no_load else _load_weights(loaded)
    manifest = loaded.manifest.to_dict()
    if as_json:
        echo_json({"path": str(loaded.root), "manifest": manifest, "loaded_on": backend})
        return
    click.echo(f"package:  {loaded.root}")
    click.echo(f"name:     {manifest['name']}  task: {manifest['task']}")
    click.echo(f"weights:  {', '.join(f'{k}: {v}' for k, v in manifest['weights'].items())}")
    click.echo(f"input:    {manifest['input']}")
    click.echo(f"decoder:  {manifest['decoder']}")
    click.echo(
        f"classes:  {len(manifest['classes'])} ({', '.join(manifest['classes'][:10])}"
        f"{', ...' if len(manifest['classes']) > 10 else ''})"
    )
    click.echo(f"thresholds: {manifest['thresholds']}")
    click.echo(f"weights loaded on backend {backend}" if backend else "weights not loaded")


def _load_weights(package: Any) -> str:
    """Load the package's weights on the runtime's backend (no patch applied); its name."""
    import coral_inference
    from coral_inference.models.inference_models import open_model
    from coral_inference.runtime.config import load_config
    from coral_inference.runtime.schema import builtin_patches

    config = load_config(overrides=[f"patches.{name}=false" for name in builtin_patches()])
    context = coral_inference.init(config)
    try:
        runner = open_model(package, context)
        runner.close()
        return context.get_backend(formats=package.formats).name
    finally:
        coral_inference.shutdown()


@models.command("import-onnx")
@click.argument("onnx_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="Model name (also its model id in coral run).")
@click.option(
    "--decoder", required=True, help="Output decoder: yolov8, yolov5, centerface or a plugin's."
)
@click.option(
    "--classes", required=True, help="Comma-separated class names, or @file with one per line."
)
@click.option("--dynamic", is_flag=True, help="Make the input's spatial dimensions dynamic.")
@click.option("--force", is_flag=True, help="Overwrite the package files in a non-empty OUT_DIR.")
@friendly_errors
@click.pass_obj
def import_onnx_command(
    decoders: Any,
    onnx_file: str,
    out_dir: Path,
    name: str,
    decoder: str,
    classes: str,
    dynamic: bool,
    force: bool,
) -> None:
    """Create a model package from a bare ONNX file (input shape read from the graph)."""
    from coral_inference.models.onnx_import import import_onnx

    if classes.startswith("@"):
        names = [
            line.strip() for line in Path(classes[1:]).read_text().splitlines() if line.strip()
        ]
    else:
        names = [c.strip() for c in classes.split(",") if c.strip()]
    package = import_onnx(
        onnx_file,
        out_dir,
        name=name,
        decoder=decoder,
        classes=names,
        dynamic=dynamic,
        force=force,
        decoders=decoders,
    )
    click.echo(
        f"wrote {package.root} (model {package.manifest.name}); "
        f"check it with: coral models inspect {package.root}"
    )
