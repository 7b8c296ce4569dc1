"""``coral models inspect | import-onnx``."""

from __future__ import annotations

from pathlib import Path

import click

from coral_inference.cli.common import echo_json, friendly_errors, plugin_manager_from_env


@click.group()
@click.pass_context
def models(ctx: click.Context) -> None:
    """Inspect and create local model packages (with the decoders installed plugins add)."""
    from coral_inference.models.decoders import DecoderRegistry, using

    registry = DecoderRegistry()
    plugin_manager_from_env().register_decoders(registry)
    ctx.with_resource(using(registry))


@models.command()
@click.argument("package")
@click.option("--json", "as_json", is_flag=True)
@friendly_errors
def inspect(package: str, as_json: bool) -> None:
    """Validate PACKAGE (directory, .zip or .tar.gz) and show its manifest."""
    from coral_inference.models.package import load_package

    loaded = load_package(package)
    for fmt in loaded.formats:
        loaded.weights_path(fmt)  # raises a clear error when a weights file is missing
    manifest = loaded.manifest.to_dict()
    if as_json:
        echo_json({"path": str(loaded.root), "manifest": manifest})
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
@friendly_errors
def import_onnx_command(
    onnx_file: str, out_dir: Path, name: str, decoder: str, classes: str, dynamic: bool
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
        onnx_file, out_dir, name=name, decoder=decoder, classes=names, dynamic=dynamic
    )
    click.echo(
        f"wrote {package.root} (model {package.manifest.name}); "
        f"check it with: coral models inspect {package.root}"
    )
