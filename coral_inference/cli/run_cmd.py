"""``coral run``: the main job."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from coral_inference.cli.common import config_options, echo_json, friendly_errors


@click.command()
@config_options
@click.option(
    "--source",
    default=None,
    help="Video file, stream URL (rtsp://...), camera index or /dev/videoN.",
)
@click.option(
    "--model",
    default=None,
    help="Model package directory/archive, or a models.<id> from the config.",
)
@click.option(
    "--backend",
    default=None,
    help="Backend to run on (default: first available of backends.preferred).",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("coral-output"),
    show_default=True,
    help="Recordings, SQLite metrics and demo assets go here.",
)
@click.option(
    "--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many frames."
)
@click.option(
    "--save-predictions",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write one JSON line per frame (boxes in source pixels).",
)
@click.option(
    "--preview",
    default=None,
    metavar="HOST:PORT",
    help="Serve a live WebRTC preview while running.",
)
@click.option(
    "--workflow",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Run this workflow specification (JSON) instead of the bare model.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option(
    "--demo", is_flag=True, help="Fill in the sample model and video for what is not given."
)
@friendly_errors
def run(
    config_file,
    overrides,
    no_env,
    source,
    model,
    backend,
    output_dir,
    max_frames,
    save_predictions,
    preview,
    as_json,
    demo,
    workflow,
) -> None:
    """Run a local model on a video source inside inference's InferencePipeline.

    Recording and metrics come from the video_sink / metric_sink patches (see the config's
    services section); Ctrl-C stops cleanly and still writes the summary.
    """
    import warnings

    from coral_inference.app.run import RunError, RunRequest
    from coral_inference.app.run import run as run_job

    warnings.filterwarnings("ignore", message=".*configuration does not support")
    request = RunRequest(
        config_file=config_file,
        overrides=overrides,
        use_env=not no_env,
        source=source,
        model=model,
        backend=backend,
        output_dir=output_dir,
        max_frames=max_frames,
        save_predictions=save_predictions,
        demo=demo,
        preview=preview,
        progress=not as_json and sys.stderr.isatty(),
        workflow=workflow,
    )
    try:
        summary = run_job(request).to_dict()
    except RunError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if as_json:
        echo_json(summary)
    else:
        _print_summary(summary, save_predictions)
    if summary["interrupted"]:
        sys.exit(130)  # the shell convention for "stopped by Ctrl-C", after a clean stop


def _print_summary(summary: dict, save_predictions: Path | None) -> None:
    latency = summary["latency_ms"]
    click.echo(f"model {summary['model']} on {summary['backend']}, source {summary['source']}")
    click.echo(
        f"frames {summary['frames']}  fps {summary['fps']}  latency p50 {latency['p50']} ms "
        f"p95 {latency['p95']} ms  detections {summary['detections']}"
        + ("  (interrupted)" if summary["interrupted"] else "")
    )
    for path in summary["recordings"]:
        click.echo(f"recording: {path}")
    recording = summary["recording"]
    if recording.get("dropped") or recording.get("failed"):
        click.echo(
            f"recording: {recording['dropped']} frames dropped (writer behind), "
            f"{recording['failed']} failed (disk errors)"
        )
    if summary["metrics"]:
        metrics = summary["metrics"]
        click.echo(
            f"metrics: {metrics['written']} points -> {metrics['store']} {metrics['target']}"
        )
    if save_predictions:
        click.echo(f"predictions: {save_predictions}")
    for problem in summary["problems"]:
        click.echo(f"warning: {problem}", err=True)
