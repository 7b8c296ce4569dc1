"""The ``coral`` command line (also installed as ``coral-runtime``).

Built-in commands import what they need inside their bodies; plugin commands
(``register_commands``) are loaded only when a command that is not built in, or ``--help``, is
asked for, so ``coral plugins list`` stays a metadata read.
"""

from __future__ import annotations

import click

from coral_inference.cli import config_cmd, models_cmd, plugins_cmd, run_cmd, runtime_cmd


class CoralGroup(click.Group):
    """A click group that adds plugin commands lazily."""

    _plugins_loaded = False

    def _load_plugin_commands(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from coral_inference.cli.common import plugin_manager_from_env

        plugin_manager_from_env().register_commands(self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, cmd_name)
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)


@click.group(cls=CoralGroup)
@click.version_option(package_name="coral-inference", prog_name="coral")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """coral-inference: run your models on your chip inside Roboflow inference."""
    import logging

    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


cli.add_command(plugins_cmd.plugins)
cli.add_command(config_cmd.config)
cli.add_command(runtime_cmd.init_command)
cli.add_command(runtime_cmd.doctor)
cli.add_command(models_cmd.models)
cli.add_command(run_cmd.run)


def main() -> None:
    cli(prog_name="coral")
