"""``coral config validate | init | show``."""

from __future__ import annotations

from pathlib import Path

import click

from coral_inference.cli.common import (
    config_options,
    echo_json,
    friendly_errors,
    load_descriptor,
    table,
)


@click.group()
def config() -> None:
    """Validate, create and show configuration."""


@config.command()
@config_options
@friendly_errors
def validate(config_file: str | None, overrides: tuple[str, ...], no_env: bool) -> None:
    """Check a config file (merged with env and --set); exit 2 listing every problem."""
    load_descriptor(config_file, overrides, no_env)
    click.echo(f"{config_file or 'configuration'}: OK")


@config.command("init")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the template here instead of standard output.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_template(output: str | None, force: bool) -> None:
    """Print (or write) a commented template of every key at its default."""
    from coral_inference.runtime.config import render_template

    text = render_template()
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output)
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists; pass --force to overwrite it")
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}")


@config.command()
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print {config, sources} as JSON.")
@friendly_errors
def show(config_file: str | None, overrides: tuple[str, ...], no_env: bool, as_json: bool) -> None:
    """Print the merged configuration and where every value came from."""
    descriptor = load_descriptor(config_file, overrides, no_env)
    if as_json:
        echo_json({"config": descriptor.to_dict(), "sources": descriptor.sources})
        return
    rows = [
        [path, _yaml_value(descriptor.get(path)), source]
        for path, source in descriptor.sources.items()
    ]
    click.echo(table(rows, ["KEY", "VALUE", "SOURCE"]))


def _yaml_value(value: object) -> str:
    """One value as YAML writes it in a config file (``true``, ``null``, ``[a, b]``)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("\n...").removesuffix(" ...").strip()
