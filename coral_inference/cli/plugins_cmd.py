"""``coral plugins list``: a metadata read of every discovered plugin."""

from __future__ import annotations

import click

from coral_inference.cli.common import (
    config_options,
    echo_json,
    friendly_errors,
    load_descriptor,
    table,
)


@click.group()
def plugins() -> None:
    """Inspect plugins."""


@plugins.command("list")
@click.option("--group", type=click.Choice(["backends", "patches", "workflows"]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@config_options
@friendly_errors
def list_plugins(group: str | None, as_json: bool, config_file, overrides, no_env) -> None:
    """List every plugin with its status and the reason.

    Statuses: loaded, disabled (by config), incompatible (version ranges, never imported),
    failed (import or hook error), invalid (hook names or arguments wrong). The NAME column is
    what plugins.disabled / CORAL_PLUGINS__DISABLED accept.
    """
    from coral_inference.runtime.plugins import GROUPS, PluginFilter, PluginManager

    descriptor = load_descriptor(config_file, overrides, no_env, plugins=False)
    manager = PluginManager(PluginFilter.from_config(descriptor))
    records = sorted(
        manager.discover([group] if group else list(GROUPS)), key=lambda r: (r.group, r.name)
    )
    if as_json:
        echo_json([r.to_dict() for r in records])
        return
    if not records:
        click.echo("no plugins found")
        return
    rows = [
        [
            r.name,
            r.group,
            f"{r.distribution or '-'} {r.version or ''}".strip(),
            r.status,
            ",".join(r.hooks) or "-",
            ",".join(r.requires) or "-",
            r.description or "-",
            r.reason or "-",
        ]
        for r in records
    ]
    headers = ["NAME", "GROUP", "DISTRIBUTION", "STATUS", "HOOKS", "REQUIRES", "DESCRIPTION"]
    click.echo(table(rows, [*headers, "REASON"]))


@plugins.command("new")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["backend", "patch", "workflow", "service", "sink"]),
    required=True,
    help="What the plugin adds.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    default=".",
    show_default=True,
    help="Where the project directory is created.",
)
def new_plugin(name: str, kind: str, directory: str) -> None:
    """Write a ready-to-install plugin project NAME (pyproject, hooks, README, a test)."""
    from coral_inference.app.scaffold import ScaffoldError, create

    try:
        skeleton = create(name, kind, directory)
    except (ScaffoldError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    click.echo(f"created {skeleton.root} ({kind} plugin {skeleton.plugin!r}):")
    for relative in skeleton.files:
        click.echo(f"  {relative}")
    click.echo(f"next: pip install -e '{skeleton.root}[test]' && pytest {skeleton.root}")
