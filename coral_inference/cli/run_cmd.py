"""``coral run``: the main job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

import click

from coral_inference.app.stop_signals import StopRequested, signal_number
from coral_inference.cli.common import (
    config_options,
    echo_json,
    stdout_for_one_json_object,
)


@click.command()
@config_options
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Video file, stream URL (rtsp://...), camera index or /dev/videoN; repeat it to run "
    "several sources (cameras) through one pipeline, each recorded on its own.",
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
    default=None,
    help="Recordings, SQLite metrics and demo assets go here (default ./coral-output); "
    "relative output paths of a config file are taken relative to it.",
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
def run(
    config_file,
    overrides,
    no_env,
    sources,
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
    services section); Ctrl-C, SIGTERM and SIGHUP stop cleanly and still write the summary.
    The exit status says how it went (README, "Exit codes").
    """
    request_args = {
        "config_file": config_file,
        "overrides": overrides,
        "use_env": not no_env,
        "sources": sources,
        "model": model,
        "backend": backend,
        "output_dir": output_dir,
        "max_frames": max_frames,
        "save_predictions": save_predictions,
        "demo": demo,
        "preview": preview,
        "progress": not as_json and sys.stderr.isatty(),
        "workflow": workflow,
    }
    if as_json:
        with stdout_for_one_json_object() as out:
            summary = _run_reporting_errors(request_args, out)
            echo_json(summary, file=out)
    else:
        summary = _run_reporting_errors(request_args, None)
        _print_summary(summary, save_predictions)
    sys.exit(summary["exit_code"])


def _run_reporting_errors(request_args: dict[str, Any], json_out: IO[str] | None) -> dict[str, Any]:
    """The job's summary, or exit with one line on stderr (and one JSON object with --json)."""
    from coral_inference.app import exit_codes
    from coral_inference.app.run import RunError, RunRequest
    from coral_inference.app.run import run as run_job
    from coral_inference.models.errors import ModelPackageError
    from coral_inference.runtime.backends import BackendError
    from coral_inference.runtime.config import ConfigError

    try:
        return run_job(RunRequest(**request_args)).to_dict()
    except ConfigError as exc:
        lines = "\n".join(f"  {issue}" for issue in exc.issues)
        message, code = f"invalid configuration:\n{lines}", exit_codes.USAGE
    except RunError as exc:
        message, code = str(exc), exc.exit_code
    except (ModelPackageError, BackendError) as exc:
        message, code = str(exc), exit_codes.CANNOT_START
    except (KeyboardInterrupt, StopRequested) as stop:  # before the job had anything to report
        message, code = "stopped before the run started", 128 + signal_number(stop)
    click.echo(f"error: {message}", err=True)
    if json_out is not None:
        echo_json({"error": message, "exit_code": code}, file=json_out)
        json_out.flush()
    sys.exit(code)


def _p50_p95(quantiles: dict) -> str:
    """``p50 12.3 ms p95 15.0 ms``, or ``n/a`` when there were no values."""
    if quantiles["p50"] is None:
        return "n/a"
    return f"p50 {quantiles['p50']} ms p95 {quantiles['p95']} ms"


def _print_summary(summary: dict, save_predictions: Path | None) -> None:
    source, sources = summary["source"], summary["sources"]
    named = f"source {source['url']}" if len(sources) == 1 else f"{len(sources)} sources"
    click.echo(f"model {summary['model']} on {summary['backend']}, {named}")
    if len(sources) > 1:
        for index, one in enumerate(sources):
            away = f", {one['reconnects']} reconnects" if one.get("reconnects") else ""
            click.echo(
                f"  source {index} {one['url']}: frames {one['frames']}"
                f"  detections {one['detections']}{away}"
            )
    click.echo(
        f"frames {summary['frames']}  fps {summary['fps']}"
        f"  latency {_p50_p95(summary['latency_ms'])}"
        f"  end-to-end {_p50_p95(summary['end_to_end_ms'])}  detections {summary['detections']}"
        + (f"  (stopped by {summary['signal']})" if summary["interrupted"] else "")
    )
    if source.get("reconnects") or not source.get("up", True):
        click.echo(
            f"source: {source['reconnects']} reconnects, {source['outage_seconds']} s away, "
            f"about {source['frames_missed_estimate']} frames missed"
        )
    for path in summary["recordings"]:
        click.echo(f"recording: {path}")
    recording = summary["recording"]
    if recording.get("dropped") or recording.get("failed"):
        click.echo(
            f"recording: {recording['dropped']} frames dropped (writer behind), "
            f"{recording['failed']} failed (disk errors)"
        )
    if recording.get("discarded"):
        click.echo(
            f"recording: {recording['discarded']} frames in segments without a detection "
            "deleted (services.recording.retain: detections)"
        )
    if summary["metrics"]:
        metrics = summary["metrics"]
        click.echo(
            f"metrics: {metrics['written']} points -> {metrics['store']} {metrics['target']}"
        )
    for plugin, counts in summary["frame_sinks"].items():
        click.echo(
            f"frame sink {plugin}: {counts['frames']} frames, {counts['dropped']} dropped "
            f"(sink behind), {counts['failed']} failed"
        )
    if save_predictions:
        click.echo(f"predictions: {save_predictions}")
    for line in summary["recovered"]:
        click.echo(f"recording: {line}", err=True)
    for problem in summary["problems"]:
        click.echo(f"warning: {problem}", err=True)
    if summary["source_error"]:
        click.echo(f"error: the source failed: {summary['source_error']}", err=True)
    for output, what in summary["lost"].items():
        click.echo(f"error: {output} lost data: {what}", err=True)
