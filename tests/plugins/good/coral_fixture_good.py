"""A well-behaved plugin: one patch on its own target, and a CLI command."""

import click

from coral_inference import hookimpl
from coral_inference.runtime.patching import Patch


class Target:
    """The object the fixture patch changes."""

    @staticmethod
    def greet() -> str:
        return "original"


class GreetPatch(Patch):
    name = "fixture_greet"
    description = "makes Target.greet say 'patched'"
    targets = ("coral_fixture_good:Target.greet",)

    def install(self, patcher, targets, context):
        patcher.replace(Target, "greet", staticmethod(lambda: "patched"))


@hookimpl
def apply_patch(context):
    return context.apply(GreetPatch())


@hookimpl
def register_commands(cli):
    @cli.command("fixture-hello")
    def hello():
        """Say hello (added by coral-fixture-good)."""
        click.echo("hello from coral-fixture-good")
