"""``coral serve``: pipelines over HTTP, live preview, dashboard, Prometheus."""

from __future__ import annotations

import sys

import click

from coral_inference.cli.common import config_options, friendly_errors, load_descriptor


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=9001, show_default=True, help="0: any free."
)
@config_options
@click.option(
    "--token",
    default=None,
    help="Bearer token (16+ characters) every route but /healthz and /login needs. Taken off "
    "the process's command line at start; --token-file keeps it off entirely.",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="File whose first line is the token (services.serve.token_file).",
)
@click.option("--no-auth", is_flag=True, help="Serve a non-loopback address without a token.")
@click.option("--no-restore", is_flag=True, help="Do not start the stored pipelines.")
@friendly_errors
def serve(
    host, port, config_file, overrides, no_env, token, token_file, no_auth, no_restore
) -> None:
    """Serve inference's HTTP API, /coral/pipelines, WebRTC preview, recordings, metrics and a
    dashboard; SIGTERM/SIGINT stop every pipeline cleanly (exit 0). Off loopback without a token
    one is generated, printed once and saved beside services.serve.state_path. README
    "Security" says what a token holder can do."""
    from coral_inference.app.listen import EXIT_CODE as LISTEN_EXIT_CODE
    from coral_inference.app.listen import CannotListen
    from coral_inference.app.serve.credentials import (
        exec_without_token_argument,
        token_from_exec,
    )
    from coral_inference.app.serve.server import serve as run_server
    from coral_inference.app.serve.settings import (
        ServeError,
        ServeSettings,
        check_inference_supported,
    )

    if token:
        exec_without_token_argument(token)
    token = token or token_from_exec()
    config = load_descriptor(config_file, overrides, no_env)
    try:
        check_inference_supported()
        settings = ServeSettings.from_config(
            config,
            host=host,
            port=port,
            token=token,
            token_file=token_file,
            no_auth=no_auth,
            restore=not no_restore,
        )
        run_server(config, settings)
    except CannotListen as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(LISTEN_EXIT_CODE)
    except ServeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
