"""``coral init`` (apply the runtime and print its state) and ``coral doctor``."""

from __future__ import annotations

import sys

import click

from coral_inference.cli.common import (
    config_options,
    echo_json,
    friendly_errors,
    load_descriptor,
    table,
)


@click.command("init")
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the runtime state as JSON.")
@click.option(
    "--strict",
    is_flag=True,
    default=None,
    help="Exit 1 if any plugin or patch failed, is invalid or incompatible.",
)
@friendly_errors
def init_command(config_file, overrides, no_env, as_json: bool, strict: bool | None) -> None:
    """Initialise the runtime (load plugins, apply patches) and print its state."""
    import logging

    import coral_inference

    logging.getLogger("coral_inference.runtime").setLevel(logging.ERROR)  # the state says it all
    descriptor = load_descriptor(config_file, overrides, no_env, strict=strict)
    context = coral_inference.init(descriptor)
    try:
        state = context.state
        if as_json:
            echo_json(state)
        else:
            click.echo(render_state(state))
        strict = descriptor.get("strict") if strict is None else strict
        if strict and state["problems"]:
            click.echo(f"strict: {len(state['problems'])} problem(s); exiting 1", err=True)
            sys.exit(1)
    finally:
        coral_inference.shutdown()


def render_state(state: dict) -> str:
    versions = state["versions"]
    lines = [
        f"platform:        {state['platform']}",
        f"coral-inference: {versions['coral_inference']}",
        f"inference:       {versions['inference'] or 'not installed'}"
        + (
            f" ({versions['inference_distribution']})" if versions["inference_distribution"] else ""
        ),
        "",
        "backends:",
    ]
    backends = [
        [n, "available" if b["available"] else "unavailable", b["plugin"] or "-", b["reason"]]
        for n, b in state["backends"].items()
    ]
    lines.append(
        _indent(table(backends, ["NAME", "STATUS", "PLUGIN", "REASON"])) if backends else "  none"
    )
    choice = state.get("backend_choice")
    if choice:
        lines.append(f"  chosen: {choice['chosen'] or 'none'} ({choice['reason']})")
    lines += ["", "patches:"]
    patches = [
        [p["name"], p["status"], p["inference_range"] or "-", p["reason"]]
        for p in state["patches"].values()
    ]
    lines.append(
        _indent(table(patches, ["NAME", "STATUS", "INFERENCE", "REASON"])) if patches else "  none"
    )
    lines += ["", "plugins:"]
    plugins = [[p["name"], p["group"], p["status"], p["reason"] or "-"] for p in state["plugins"]]
    lines.append(
        _indent(table(plugins, ["NAME", "GROUP", "STATUS", "REASON"])) if plugins else "  none"
    )
    if state["problems"]:
        lines += ["", "problems:"] + [f"  - {p}" for p in state["problems"]]
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


@click.command()
@click.option("--json", "as_json", is_flag=True)
@config_options
@friendly_errors
def doctor(as_json: bool, config_file, overrides, no_env) -> None:
    """Check this machine: python, chip, inference, backends, plugins, and what to install."""
    from coral_inference.app.doctor import diagnose

    report = diagnose(load_descriptor(config_file, overrides, no_env))
    if as_json:
        echo_json(report)
        return
    for section, items in report.items():
        click.echo(f"{section}:")
        if isinstance(items, dict):
            for key, value in items.items():
                click.echo(f"  {key}: {value}")
        else:
            for item in items:
                click.echo(f"  - {item}")
