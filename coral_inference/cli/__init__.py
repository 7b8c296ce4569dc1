"""The ``coral`` command line (also installed as ``coral-runtime``).

Each built-in command's module is imported only when that command runs (click's lazily loaded
subcommands), and plugin commands (``register_commands``) only when a command that is not built
in, or ``--help``, is asked for, so ``coral plugins list`` stays a metadata read.
"""

from __future__ import annotations

import importlib

import click

#: Built-in commands: name -> "module:attribute" of the click command.
BUILTIN_COMMANDS = {
    "plugins": "coral_inference.cli.plugins_cmd:plugins",
    "config": "coral_inference.cli.config_cmd:config",
    "init": "coral_inference.cli.runtime_cmd:init_command",
    "doctor": "coral_inference.cli.runtime_cmd:doctor",
    "models": "coral_inference.cli.models_cmd:models",
    "run": "coral_inference.cli.run_cmd:run",
    "serve": "coral_inference.cli.serve_cmd:serve",
}


class CoralGroup(click.Group):
    """A click group whose built-in commands load on use and plugin commands on demand."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from coral_inference.cli.common import plugin_manager_from_env

        plugin_manager_from_env().register_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in BUILTIN_COMMANDS and cmd_name not in self.commands:
            module, _, attribute = BUILTIN_COMMANDS[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return sorted(set(BUILTIN_COMMANDS) | set(super().list_commands(ctx)))


@click.group(cls=CoralGroup)
@click.version_option(package_name="coral-inference", prog_name="coral")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """coral-inference: run your models on your chip inside Roboflow inference."""
    import logging

    from coral_inference.cli.common import quiet_inference_warnings

    quiet_inference_warnings()
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    cli(prog_name="coral")
