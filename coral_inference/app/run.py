"""``coral run``: a local model on a video source inside ``inference``'s ``InferencePipeline``.

The runtime is initialised from the merged config, so recording and metrics come from the
``video_sink`` / ``metric_sink`` patches exactly as they would for any other pipeline; this
module only picks the model and source, drives the pipeline and summarises what happened.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from coral_inference.app import exit_codes
from coral_inference.app.inference_import import import_inference_with_logs_on_stderr
from coral_inference.app.preflight import NotWritable, check_directory, check_file
from coral_inference.app.serve.credentials import mask_credentials
from coral_inference.app.stop_signals import (
    StopRequested,
    StopSignals,
    signal_number,
    stop_on_signals,
)
from coral_inference.app.stream_diagnosis import diagnose_stream
from coral_inference.patches.tap import DROP, pipeline_clock, pipeline_name
from coral_inference.runtime.config import RuntimeDescriptor, load_config
from coral_inference.services.frame_clock import FrameClock, frame_age_ms
from coral_inference.services.percentiles import percentiles
from coral_inference.services.predictions import (
    PredictionBoxes,
    frame_timestamp_utc,
)
from coral_inference.services.recording.totals import recorder_totals
from coral_inference.services.source_health import SourceHealth

log = logging.getLogger(__name__)

PIPELINE_ID = "coral-run"
SAMPLE_DIR = "sample"
DEFAULT_OUTPUT_DIR = Path("coral-output")
#: Where the outputs go under the output directory unless the config says otherwise.
OUTPUT_PATHS = {"services.recording.dir": "recordings", "services.metrics.path": "metrics.db"}
#: inference's status events that mean the source (or the inference thread reading it) failed.
SOURCE_ERROR_EVENTS = frozenset({"INFERENCE_ERROR", "SOURCE_ERROR"})


class RunError(RuntimeError):
    """A problem the user can fix (bad source, bad model reference); the message says how.

    ``exit_code`` is what ``coral run`` exits with (see :mod:`coral_inference.app.exit_codes`).
    """

    def __init__(self, message: str, exit_code: int = exit_codes.CANNOT_START) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class SourceError(RunError):
    """The source cannot be opened or read."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_codes.SOURCE_FAILED)


@dataclass
class RunRequest:
    """What ``coral run`` was asked to do (CLI flags; None means "from config / demo")."""

    config_file: str | None = None
    overrides: tuple[str, ...] = ()
    use_env: bool = True
    sources: tuple[str, ...] = ()
    """``--source`` (repeatable: several sources are multiplexed into one pipeline)."""
    model: str | None = None
    backend: str | None = None
    output_dir: Path | None = None
    """``--output-dir``; None means the default, ``./coral-output``."""
    max_frames: int | None = None
    save_predictions: Path | None = None
    demo: bool = False
    preview: str | None = None
    progress: bool = False
    #: ``--workflow SPEC.json``: run that workflow instead of the bare model (run_workflow.py).
    workflow: Path | None = None


@dataclass
class RunSummary:
    frames: int = 0
    seconds: float = 0.0
    detections: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    ages_ms: list[float] = field(default_factory=list)
    interrupted: bool = False
    signal: int | None = None
    source_error: str | None = None
    lost: dict[str, str] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)
    predictions_failed: int = 0
    model_id: str = ""
    backend: str = ""
    sources: list[str] = field(default_factory=list)
    source_health: dict[str, Any] = field(default_factory=dict)
    """Outage totals over every source (:meth:`SourceHealth.summary`)."""
    per_source: dict[int, dict[str, Any]] = field(default_factory=dict)
    """By source id (the position in ``sources``): frames, detections and outage counters."""
    recordings: list[str] = field(default_factory=list)
    recording: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    #: Plugins' frame sinks (``register_frame_sinks``): plugin -> frames/dropped/failed/pending.
    frame_sinks: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    workflow: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "fps": round(self.frames / self.seconds, 2) if self.seconds > 0 else 0.0,
            "latency_ms": percentiles(self.latencies_ms),
            "end_to_end_ms": percentiles(self.ages_ms),
            "detections": self.detections,
            "recordings": self.recordings,
            "recording": self.recording,
            "metrics": self.metrics,
            "frame_sinks": self.frame_sinks,
            "model": self.model_id,
            "backend": self.backend,
            "source": {"url": self._urls(), **self.source_health},
            "sources": [
                {"url": mask_credentials(url), "frames": 0, "detections": 0}
                | self.per_source.get(index, {})
                for index, url in enumerate(self.sources)
            ],
            "interrupted": self.interrupted,
            "signal": signal_name(self.signal),
            "source_error": self.source_error and mask_credentials(self.source_error),
            "lost": self.lost,
            "recovered": self.recovered,
            "problems": self.problems,
            "workflow": self.workflow,
            "exit_code": self.exit_code,
        }

    def _urls(self) -> str | list[str]:
        """The source's URL (credentials masked), or the list of them when there are several."""
        urls = [mask_credentials(url) for url in self.sources]
        return urls[0] if len(urls) == 1 else urls

    @property
    def exit_code(self) -> int:
        """Signal > source failed > output lost data > OK (see the README's table)."""
        if self.signal is not None:
            return exit_codes.for_signal(self.signal)
        if self.source_error is not None:
            return exit_codes.SOURCE_FAILED
        if self.lost:
            return exit_codes.OUTPUT_LOST_DATA
        return exit_codes.OK


def signal_name(signum: int | None) -> str | None:
    import signal

    return None if signum is None else signal.Signals(signum).name


def sequential_sink_mode() -> Any:
    """inference's ``SinkMode.SEQUENTIAL``: with several sources ``on_prediction`` still gets
    one frame at a time (what the counters, the frame limit and the predictions file expect)."""
    from inference.core.interfaces.stream.inference_pipeline import SinkMode

    return SinkMode.SEQUENTIAL


def parse_source(source: str) -> str | int:
    """A camera index (``0``), a device (``/dev/video0``), a URL, or a video file.

    Local files and devices are opened once here, so a missing, unreadable or corrupt one is
    reported before the pipeline starts (streams reconnect by design and are not checked).
    """
    if "://" in source:
        return source
    reference: str | int = int(source) if source.isdigit() else source
    if isinstance(reference, str) and not source.startswith("/dev/") and not Path(source).is_file():
        raise SourceError(
            f"source {source!r} does not exist: give a video file, a URL or a camera index"
        )
    import cv2

    capture = cv2.VideoCapture(reference)
    try:
        readable = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    if not readable:
        raise SourceError(
            f"source {source!r} cannot be read as video (corrupt file, unsupported "
            "format, or a camera that is absent or busy)"
        )
    return reference


def _resolve_model(
    request: RunRequest, config: RuntimeDescriptor, sample_dir: Path
) -> tuple[str, list[str]]:
    """The model id to run and the ``--set`` overrides that register it."""
    from coral_inference.models.package import load_package

    reference = request.model
    if reference is None and request.demo:
        from coral_inference.models.sample import build_sample_package

        package_dir = sample_dir / "centerface"
        if not (package_dir / "model.json").is_file():
            build_sample_package(package_dir)
        reference = str(package_dir)
    if reference is None:
        configured = sorted(config.section("models"))
        if len(configured) == 1:
            return configured[0], []
        if request.workflow is not None:  # the workflow names its own models
            return "", []
        raise RunError(
            "say which model to run: --model PACKAGE_DIR (or a models.<id> from the "
            "config), or --demo for the bundled sample"
        )
    if reference in config.section("models"):
        return reference, []
    if not Path(reference).exists():
        known = ", ".join(sorted(config.section("models"))) or "none configured"
        raise RunError(
            f"model {reference!r} is neither a model package path nor a configured "
            f"model id ({known})"
        )
    package = load_package(reference)
    model_id = package.manifest.name
    return model_id, [f"models.{model_id}={package.root.resolve()}"]


def _output_overrides(config: RuntimeDescriptor, output_dir: Path, explicit: bool) -> list[str]:
    """Send recordings and SQLite metrics under the output directory.

    Defaults always go there. With an explicit ``--output-dir``, a *relative* path from a config
    file is taken relative to it too (a leading ``coral-output/``, the template's default root,
    stands for the output directory), so the flag always moves every output; absolute paths
    and ``--set``/env values are kept.
    """
    overrides = []
    for key, name in OUTPUT_PATHS.items():
        source = config.sources.get(key, "default")
        if source == "default":
            overrides.append(f"{key}={output_dir / name}")
        elif explicit and source.startswith("file "):
            configured = Path(str(config.get(key)))
            if not configured.is_absolute():
                parts = configured.parts
                if parts and parts[0] == DEFAULT_OUTPUT_DIR.name:
                    parts = parts[1:]
                overrides.append(f"{key}={output_dir.joinpath(*parts)}")
    return overrides


def _sink_enabled(config: RuntimeDescriptor, patch: str) -> bool:
    """Whether ``patch`` will be applied, as far as the config tells before init."""
    only = config.get("plugins.only")
    return (
        bool(config.get(f"patches.{patch}.enabled", True))
        and (only is None or patch in only)
        and patch not in (config.get("plugins.disabled") or [])
    )


def _preflight(config: RuntimeDescriptor, request: RunRequest, output_dir: Path) -> list[str]:
    """Check every output path is writable (before any model loads) and recover segments a
    crashed run left half-written; returns what recovery did, one line per file."""
    try:
        check_directory(output_dir, "output directory")
        recovered: list[str] = []
        if _sink_enabled(config, "video_sink"):
            recording_dir = Path(str(config.get("services.recording.dir")))
            check_directory(recording_dir, "recording directory (services.recording.dir)")
            from coral_inference.services.recording.recovery import recover_partial_segments

            recovered = [str(outcome) for outcome in recover_partial_segments(recording_dir)]
        if _sink_enabled(config, "metric_sink") and config.get("services.metrics.store") == (
            "sqlite"
        ):
            metrics_path = Path(str(config.get("services.metrics.path")))
            check_file(metrics_path, "metrics database (services.metrics.path)")
        if request.save_predictions is not None:
            check_file(request.save_predictions, "predictions file (--save-predictions)")
    except NotWritable as exc:
        raise RunError(str(exc)) from None
    return recovered


class _Collector:
    """The pipeline's ``on_prediction``: counts, latency, predictions file, frame limit."""

    def __init__(
        self,
        summary: RunSummary,
        predictions_file: IO[str] | None,
        max_frames: int | None,
        on_limit: Callable[[], None],
        progress: bool,
        model_time: Callable[[Any], float | None],
    ) -> None:
        self.summary = summary
        self.model_time = model_time  # ModelTimes.of: also for results without one (workflows)
        self.file = predictions_file
        self.max_frames = max_frames
        self.on_limit = on_limit
        self.progress = progress
        self.first: float | None = None
        self.last_report = 0.0
        self.lock = threading.Lock()
        self.clock: FrameClock | None = None  # the pipeline's, set once it exists

    def __call__(self, predictions: Any, frames: Any) -> object | None:
        now = time.monotonic()
        with self.lock:
            if self.max_frames is not None and self.summary.frames >= self.max_frames:
                return DROP
            if self.first is None:
                self.first = now
            summary = self.summary
            summary.frames += 1
            if self.clock is not None:  # sinks off: no tap re-stamped the frame
                frames = self.clock.restamp(frames)
            stamp = frame_timestamp_utc(frames)
            age_ms = frame_age_ms(frames)
            summary.ages_ms.append(age_ms)
            model_ms = self.model_time(predictions)
            if model_ms is not None:
                summary.latencies_ms.append(model_ms)
            boxes = PredictionBoxes(predictions)
            summary.detections += len(boxes)
            source = summary.per_source.setdefault(frames.source_id, {"frames": 0, "detections": 0})
            source["frames"] += 1
            source["detections"] += len(boxes)
            summary.seconds = now - self.first
            if self.file is not None:
                self._write_line(_prediction_line(frames.frame_id, frames.source_id, stamp, boxes))
            if self.progress and now - self.last_report >= 0.5:
                self.last_report = now
                fps = summary.frames / summary.seconds if summary.seconds else 0.0
                print(
                    f"\rframes {summary.frames}  fps {fps:5.1f}",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            if self.max_frames is not None and summary.frames >= self.max_frames:
                self.on_limit()
        return None

    def _write_line(self, line: dict[str, Any]) -> None:
        assert self.file is not None
        try:
            self.file.write(json.dumps(line) + "\n")
        except OSError as exc:  # disk full, I/O error: count, tell once, keep running
            if not self.summary.predictions_failed:
                log.error("cannot write predictions to %s: %s", self.file.name, exc)
            self.summary.predictions_failed += 1


class _SourceWatch:
    """An ``inference`` status handler keeping the first error of the source or its reader."""

    def __init__(self) -> None:
        self.error: str | None = None

    def on_status(self, update: Any) -> None:
        if self.error is None and getattr(update, "event_type", None) in SOURCE_ERROR_EVENTS:
            payload = getattr(update, "payload", None) or {}
            message = payload.get("error_message") or payload.get("error") or update.event_type
            kind = payload.get("error_type")
            self.error = f"{kind}: {message}" if kind else str(message)


def _prediction_line(
    frame_id: int, source_id: int, stamp: datetime, boxes: PredictionBoxes
) -> dict[str, Any]:
    return {
        "frame_id": frame_id,
        "source_id": source_id,
        "timestamp": stamp.isoformat(),
        "detections": [
            {
                "x1": round(x1, 2),
                "y1": round(y1, 2),
                "x2": round(x2, 2),
                "y2": round(y2, 2),
                "confidence": round(score, 4),
                "class": name,
            }
            for (x1, y1, x2, y2), score, name in zip(
                boxes.xyxy.tolist(), boxes.confidence.tolist(), boxes.class_name, strict=False
            )
        ],
    }


def run(request: RunRequest) -> RunSummary:
    """Do the job; raises :class:`RunError` / config / model errors for the CLI to report.

    SIGTERM and SIGHUP stop the run like Ctrl-C: the summary is returned with ``signal`` set.
    """
    with stop_on_signals() as signals:
        return _run(request, signals)


def _run(request: RunRequest, signals: StopSignals) -> RunSummary:
    import coral_inference

    env = None if request.use_env else {}
    base = load_config(request.config_file, overrides=request.overrides, env=env)
    output_dir = request.output_dir or DEFAULT_OUTPUT_DIR
    sample_dir = output_dir / SAMPLE_DIR
    sources = list(request.sources)
    if not sources and request.demo:
        from coral_inference.models.sample import generate_sample_video

        video = sample_dir / "faces.mp4"
        if not video.is_file():
            check_writable(output_dir)
            generate_sample_video(video)
        sources = [str(video)]
    if not sources:
        raise RunError(
            "say what to run on: --source VIDEO|URL|CAMERA_INDEX (or --demo)", exit_codes.USAGE
        )
    references = [parse_source(source) for source in sources]
    if request.workflow is not None:  # a bad spec is one error before anything starts
        from coral_inference.app.run_workflow import load_spec

        load_spec(request.workflow)
    explicit = request.output_dir is not None
    overrides = [*_output_overrides(base, output_dir, explicit), *request.overrides]
    # one plugin manager for the whole run: the later loads ask the plugins the first loaded
    config = load_config(
        request.config_file, overrides=overrides, env=env, plugins=base.plugin_manager or True
    )
    recovered = _preflight(config, request, output_dir)
    model_id, model_overrides = _resolve_model(request, config, sample_dir)
    overrides += model_overrides
    if request.backend:
        overrides.append(f"backends.preferred={json.dumps([request.backend])}")
    config = load_config(
        request.config_file, overrides=overrides, env=env, plugins=config.plugin_manager or True
    )

    import_inference_with_logs_on_stderr()  # seconds: only once the input is known to be good
    context = coral_inference.init(config)
    summary = RunSummary(model_id=model_id, sources=sources, recovered=recovered)
    summary.problems = context.problems()
    sinks = {name for name in ("video_sink", "metric_sink") if context.is_patch_enabled(name)}
    try:
        from coral_inference.models.package import load_package

        package = (
            load_package(config.get(f"models.{model_id}"), decoders=context.decoders)
            if model_id
            else None
        )
        formats = package.formats if package is not None else None
        summary.backend = context.get_backend(request.backend, formats=formats).name
        _drive(context, request, model_id, package, references, summary)
    except (KeyboardInterrupt, StopRequested) as stop:  # before the pipeline ran
        summary.interrupted = True
        summary.signal = signal_number(stop)
    finally:
        signals.disarm()  # closing the outputs must not be interrupted
        coral_inference.shutdown()
        _collect_outputs(context, sinks, summary)
    if summary.signal is None and signals.received is not None:  # arrived while closing
        summary.interrupted, summary.signal = True, signals.received
    if summary.frames == 0 and summary.signal is None:
        reason = summary.source_error or "no frame could be read from the source"
        pairs = zip(sources, references, strict=True)
        streams = [source for source, reference in pairs if isinstance(reference, str)]
        diagnosis = next(filter(None, map(diagnose_stream, streams)), None)
        summary.source_error = f"{diagnosis} ({reason})" if diagnosis else reason
    return summary


def check_writable(output_dir: Path) -> None:
    """The output directory, checked before the demo assets are written into it."""
    try:
        check_directory(output_dir, "output directory")
    except NotWritable as exc:
        raise RunError(str(exc)) from None


def _drive(
    context: Any,
    request: RunRequest,
    model_id: str,
    package: Any,
    references: list[str | int],
    summary: RunSummary,
) -> None:
    from inference import InferencePipeline

    # several sources are multiplexed; their frames reach on_prediction one at a time
    video_reference = references[0] if len(references) == 1 else references
    max_fps = context.config.get("sources.max_fps")
    predictions_file = None
    if request.save_predictions is not None:
        request.save_predictions.parent.mkdir(parents=True, exist_ok=True)
        predictions_file = request.save_predictions.open("w", encoding="utf-8")
    pipeline: Any = None
    watch = _SourceWatch()
    health = SourceHealth(
        context.config.get("sources.reconnect_timeout_s"),
        lambda _: pipeline.terminate(),
    )
    try:
        counter = collector = _Collector(
            summary,
            predictions_file,
            request.max_frames,
            lambda: pipeline.terminate(),
            request.progress,
            context.services.model_times.of,
        )
        if request.workflow is not None:
            from coral_inference.app import run_workflow

            collector = run_workflow.LastOutputs(request.workflow, collector)
            summary.workflow = collector.summary
        with pipeline_name(PIPELINE_ID):
            if request.workflow is not None:
                spec = run_workflow.load_spec(request.workflow)
                pipeline = run_workflow.init_pipeline(
                    video_reference,
                    spec,
                    model_id,
                    collector,
                    [watch.on_status, health.on_status],
                    max_fps,
                )
            else:
                thresholds = package.manifest.thresholds
                pipeline = InferencePipeline.init(
                    video_reference=video_reference,
                    model_id=model_id,
                    on_prediction=collector,
                    confidence=thresholds.confidence,
                    iou_threshold=thresholds.iou,
                    max_detections=thresholds.max_detections,
                    status_update_handlers=[watch.on_status, health.on_status],
                    sink_mode=sequential_sink_mode(),
                    max_fps=max_fps,
                )
        counter.clock = pipeline_clock(pipeline)
        preview = _start_preview(request.preview, PIPELINE_ID, context)
        try:
            pipeline.start(use_main_thread=False)
            try:
                pipeline.join()
            except (KeyboardInterrupt, StopRequested) as stop:
                summary.interrupted = True
                summary.signal = signal_number(stop)
                pipeline.terminate()
                pipeline.join()
        finally:
            if preview is not None:
                preview.stop()
    finally:
        health.close()
        summary.source_health = health.summary()
        for source_id, counters in health.per_source().items():
            if isinstance(source_id, int):
                summary.per_source.setdefault(source_id, {}).update(counters)
        summary.source_error = summary.source_error or health.given_up or watch.error
        if predictions_file is not None:
            try:
                predictions_file.close()
            except OSError as exc:
                log.error("cannot write predictions to %s: %s", predictions_file.name, exc)
                summary.predictions_failed += 1
        if request.progress:
            print(file=sys.stderr)


def _start_preview(address: str | None, pipeline_id: str, context: Any) -> Any:
    """The preview server of ``--preview ADDRESS``, started (None without the flag)."""
    if address is None:
        return None
    from coral_inference.app.preview.server import PreviewError, PreviewServer

    if not context.is_patch_enabled("buffer_sink"):
        raise RunError("--preview reads the buffer_sink patch's ring: enable patches.buffer_sink")
    try:
        server = PreviewServer.from_config(
            address, pipeline_id, context.config, context.services.rings.get
        )
        server.start()
    except (PreviewError, ValueError) as exc:
        raise RunError(f"--preview {address}: {exc}") from None
    print(f"preview: {server.url}", file=sys.stderr, flush=True)
    return server


def _collect_outputs(context: Any, sinks: set[str], summary: RunSummary) -> None:
    services = context.services
    # After shutdown: every sink closed, and a plugin whose sink raised is recorded failed.
    summary.frame_sinks = services.frame_sinks.stats()
    summary.problems = context.problems()
    if "video_sink" in sinks:
        summary.recordings = [str(p) for p in services.recordings.segments()]
        stats = services.recordings.stats()
        summary.recording = recorder_totals(stats)
        recording = summary.recording
        lost = recording["dropped"] + recording["failed"] + recording["pending"]
        if lost:
            errors = sorted({s.last_error for s in stats if s.last_error})
            summary.lost["recording"] = (
                f"{lost} frames not recorded ({recording['dropped']} dropped: writer behind, "
                f"{recording['failed']} failed, {recording['pending']} still queued when the "
                "run ended)" + (f": {errors[-1]}" if errors else "")
            )
    if "metric_sink" in sinks:
        summary.metrics = metrics = services.metrics.summary() or {}
        unwritten = sum(metrics.get(key, 0) for key in ("dropped", "rejected", "pending"))
        if unwritten:
            summary.lost["metrics"] = (
                f"{unwritten} points not written to {metrics['store']} {metrics['target']} "
                f"({metrics['pending']} pending, {metrics['rejected']} rejected as malformed, "
                f"{metrics['dropped']} dropped)"
                + (f": {metrics['last_error']}" if metrics.get("last_error") else "")
            )
    if summary.predictions_failed:
        summary.lost["predictions"] = f"{summary.predictions_failed} lines not written"
