"""Helpers shared by the CLI commands: config options, friendly errors, JSON output."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from coral_inference.runtime.config import RuntimeDescriptor
    from coral_inference.runtime.plugins import PluginManager

F = TypeVar("F", bound=Callable[..., Any])


def config_options(func: F) -> F:
    """``-c/--config FILE``, ``--set KEY=VALUE`` (repeatable) and ``--no-env``."""
    func = click.option("--no-env", is_flag=True, help="Ignore CORAL_* environment variables.")(
        func
    )
    func = click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override one config key (VALUE is YAML), e.g. --set patches.video_sink=false.",
    )(func)
    return click.option(
        "-c",
        "--config",
        "config_file",
        type=click.Path(dir_okay=False),
        default=None,
        help="YAML or JSON config file (default: $CORAL_CONFIG, else built-in defaults).",
    )(func)


def load_descriptor(
    config_file: str | None,
    overrides: tuple[str, ...],
    no_env: bool,
    *,
    plugins: bool = True,
    strict: bool | None = None,
) -> RuntimeDescriptor:
    """The merged configuration; ``plugins=False`` checks only the core's keys (for commands
    that only need ``plugins.*``, such as ``coral plugins list``)."""
    from coral_inference.runtime.config import load_config

    return load_config(
        config_file,
        overrides=overrides,
        env={} if no_env else None,
        plugins=plugins,
        strict=strict,
    )


def friendly_errors(func: F) -> F:
    """Turn the errors a user can fix into one clear message and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from coral_inference.models.errors import ModelPackageError
        from coral_inference.runtime.backends import BackendError
        from coral_inference.runtime.config import ConfigError

        try:
            return func(*args, **kwargs)
        except ConfigError as exc:
            lines = "\n".join(f"  {issue}" for issue in exc.issues)
            click.echo(f"error: invalid configuration:\n{lines}", err=True)
            sys.exit(2)
        except (ModelPackageError, BackendError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]


#: inference warns at import about optional model families whose dependencies are missing
#: (``ModelDependencyMissing``, one line each); none of them concerns local model packages.
INFERENCE_IMPORT_WARNINGS = r".*(configuration does not support|dependencies? (is|are) missing)"


def quiet_inference_warnings() -> None:
    """Hide inference's import-time warnings (``-W``/``PYTHONWARNINGS`` still win)."""
    import warnings

    if not sys.warnoptions:
        warnings.filterwarnings("ignore", message=INFERENCE_IMPORT_WARNINGS)


def echo_json(data: Any, file: IO[str] | None = None) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str), file=file)


@contextlib.contextmanager
def stdout_for_one_json_object() -> Iterator[IO[str]]:
    """Inside the block, whatever anything writes to standard output (this process's code,
    inference, a library printing at the file-descriptor level) goes to standard error; the
    stream yielded writes to the real standard output, for the one JSON object of ``--json``."""
    sys.stdout.flush()
    real = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(os.dup(real), "w", encoding="utf-8")
    try:
        yield out
    finally:
        out.flush()
        sys.stdout.flush()
        os.dup2(real, 1)
        os.close(real)
        out.close()


def plugin_manager_from_env() -> PluginManager:
    """A plugin manager honouring the plugin filter from env/$CORAL_CONFIG, with plugins loaded.

    A broken config here must not break the CLI: it falls back to no filter.
    """
    from coral_inference.runtime.config import ConfigError, load_config
    from coral_inference.runtime.plugins import PluginFilter, PluginManager

    try:
        plugin_filter = PluginFilter.from_config(load_config(plugins=False))
    except ConfigError:
        plugin_filter = PluginFilter()
    manager = PluginManager(plugin_filter)
    manager.discover()
    return manager


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain left-aligned text table."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()]
    lines += [
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
