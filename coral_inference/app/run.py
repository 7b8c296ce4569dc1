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
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from coral_inference.patches.tap import DROP, PredictionBoxes, frame_timestamp_utc, pipeline_name
from coral_inference.runtime.config import RuntimeDescriptor, load_config

log = logging.getLogger(__name__)

PIPELINE_ID = "coral-run"
SAMPLE_DIR = "sample"


class RunError(RuntimeError):
    """A problem the user can fix (bad source, bad model reference); the message says how."""


@dataclass
class RunRequest:
    """What ``coral run`` was asked to do (CLI flags; None means "from config / demo")."""

    config_file: str | None = None
    overrides: tuple[str, ...] = ()
    use_env: bool = True
    source: str | None = None
    model: str | None = None
    backend: str | None = None
    output_dir: Path = Path("coral-output")
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
    model_id: str = ""
    backend: str = ""
    source: str = ""
    recordings: list[str] = field(default_factory=list)
    recording: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    workflow: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "fps": round(self.frames / self.seconds, 2) if self.seconds > 0 else 0.0,
            "latency_ms": _percentiles(self.latencies_ms),
            "end_to_end_ms": _percentiles(self.ages_ms),
            "detections": self.detections,
            "recordings": self.recordings,
            "recording": self.recording,
            "metrics": self.metrics,
            "model": self.model_id,
            "backend": self.backend,
            "source": self.source,
            "interrupted": self.interrupted,
            "problems": self.problems,
            "workflow": self.workflow,
        }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def percentile(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {"p50": percentile(0.5), "p95": percentile(0.95)}


def parse_source(source: str) -> str | int:
    """A camera index (``0``), a device (``/dev/video0``), a URL, or a video file.

    Local files and devices are opened once here, so a missing, unreadable or corrupt one is
    reported before the pipeline starts (streams reconnect by design and are not checked).
    """
    if "://" in source:
        return source
    reference: str | int = int(source) if source.isdigit() else source
    if isinstance(reference, str) and not source.startswith("/dev/") and not Path(source).is_file():
        raise RunError(
            f"source {source!r} does not exist: give a video file, a URL or a camera index"
        )
    import cv2

    capture = cv2.VideoCapture(reference)
    try:
        readable = capture.isOpened() and capture.read()[0]
    finally:
        capture.release()
    if not readable:
        raise RunError(
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


def _output_overrides(config: RuntimeDescriptor, output_dir: Path) -> list[str]:
    """Send recordings and SQLite metrics under ``--output-dir`` unless configured elsewhere."""
    overrides = []
    if config.sources.get("services.recording.dir", "default") == "default":
        overrides.append(f"services.recording.dir={output_dir / 'recordings'}")
    if config.sources.get("services.metrics.path", "default") == "default":
        overrides.append(f"services.metrics.path={output_dir / 'metrics.db'}")
    return overrides


class _Collector:
    """The pipeline's ``on_prediction``: counts, latency, predictions file, frame limit."""

    def __init__(
        self,
        summary: RunSummary,
        predictions_file: IO[str] | None,
        max_frames: int | None,
        on_limit: Callable[[], None],
        progress: bool,
    ) -> None:
        self.summary = summary
        self.file = predictions_file
        self.max_frames = max_frames
        self.on_limit = on_limit
        self.progress = progress
        self.first: float | None = None
        self.last_report = 0.0
        self.lock = threading.Lock()

    def __call__(self, predictions: Any, frames: Any) -> object | None:
        now = time.monotonic()
        with self.lock:
            if self.max_frames is not None and self.summary.frames >= self.max_frames:
                return DROP
            if self.first is None:
                self.first = now
            summary = self.summary
            summary.frames += 1
            stamp = frame_timestamp_utc(frames)
            age_ms = (datetime.now(timezone.utc) - stamp).total_seconds() * 1000
            summary.ages_ms.append(age_ms)
            model_time = (predictions or {}).get("time")
            summary.latencies_ms.append(
                model_time * 1000 if isinstance(model_time, float) else age_ms
            )
            boxes = PredictionBoxes(predictions)
            summary.detections += len(boxes)
            summary.seconds = now - self.first
            if self.file is not None:
                self.file.write(json.dumps(_prediction_line(frames.frame_id, stamp, boxes)) + "\n")
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


def _prediction_line(frame_id: int, stamp: datetime, boxes: PredictionBoxes) -> dict[str, Any]:
    return {
        "frame_id": frame_id,
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
    """Do the job; raises :class:`RunError` / config / model errors for the CLI to report."""
    import coral_inference

    env = None if request.use_env else {}
    base = load_config(request.config_file, overrides=request.overrides, env=env)
    output_dir = request.output_dir
    sample_dir = output_dir / SAMPLE_DIR
    source = request.source
    if source is None and request.demo:
        from coral_inference.models.sample import generate_sample_video

        video = sample_dir / "faces.mp4"
        if not video.is_file():
            generate_sample_video(video)
        source = str(video)
    if source is None:
        raise RunError("say what to run on: --source VIDEO|URL|CAMERA_INDEX (or --demo)")
    video_reference = parse_source(source)
    if request.workflow is not None:  # a bad spec is one error before anything starts
        from coral_inference.app.run_workflow import load_spec

        load_spec(request.workflow)
    model_id, model_overrides = _resolve_model(request, base, sample_dir)
    overrides = [*_output_overrides(base, output_dir), *model_overrides, *request.overrides]
    if request.backend:
        overrides.append(f"backends.preferred={json.dumps([request.backend])}")
    config = load_config(request.config_file, overrides=overrides, env=env)
    output_dir.mkdir(parents=True, exist_ok=True)

    context = coral_inference.init(config)
    summary = RunSummary(model_id=model_id, source=str(source))
    summary.problems = context.problems()
    sinks = {name for name in ("video_sink", "metric_sink") if context.is_patch_enabled(name)}
    try:
        from coral_inference.models.package import load_package

        package = load_package(config.get(f"models.{model_id}")) if model_id else None
        formats = package.formats if package is not None else None
        summary.backend = context.get_backend(request.backend, formats=formats).name
        _drive(context, request, model_id, package, video_reference, summary)
    finally:
        coral_inference.shutdown()
        _collect_outputs(context, sinks, summary)
    return summary


def _drive(
    context: Any,
    request: RunRequest,
    model_id: str,
    package: Any,
    video_reference: str | int,
    summary: RunSummary,
) -> None:
    from inference import InferencePipeline

    predictions_file = None
    if request.save_predictions is not None:
        request.save_predictions.parent.mkdir(parents=True, exist_ok=True)
        predictions_file = request.save_predictions.open("w", encoding="utf-8")
    pipeline: Any = None
    try:
        collector = _Collector(
            summary,
            predictions_file,
            request.max_frames,
            lambda: pipeline.terminate(),
            request.progress,
        )
        if request.workflow is not None:
            from coral_inference.app import run_workflow

            collector = run_workflow.LastOutputs(request.workflow, collector)
            summary.workflow = collector.summary
        with pipeline_name(PIPELINE_ID):
            if request.workflow is not None:
                spec = run_workflow.load_spec(request.workflow)
                pipeline = run_workflow.init_pipeline(video_reference, spec, model_id, collector)
            else:
                thresholds = package.manifest.thresholds
                pipeline = InferencePipeline.init(
                    video_reference=video_reference,
                    model_id=model_id,
                    on_prediction=collector,
                    confidence=thresholds.confidence,
                    iou_threshold=thresholds.iou,
                    max_detections=thresholds.max_detections,
                )
        preview = _start_preview(request.preview, PIPELINE_ID, context)
        try:
            pipeline.start(use_main_thread=False)
            try:
                pipeline.join()
            except KeyboardInterrupt:
                summary.interrupted = True
                pipeline.terminate()
                pipeline.join()
        finally:
            if preview is not None:
                preview.stop()
    finally:
        if predictions_file is not None:
            predictions_file.close()
        if request.progress:
            print(file=sys.stderr)


def _start_preview(address: str | None, pipeline_id: str, context: Any) -> Any:
    if address is None:
        return None
    from coral_inference.app.preview import PreviewError, PreviewServer

    if not context.is_patch_enabled("buffer_sink"):
        raise RunError("--preview reads the buffer_sink patch's ring: enable patches.buffer_sink")
    try:
        server = PreviewServer.from_address(
            address, pipeline_id, context.config, context.services.rings.get
        )
        server.start()
    except (PreviewError, ValueError) as exc:
        raise RunError(f"--preview {address}: {exc}") from None
    log.warning("preview of %s at %s", pipeline_id, server.url)
    return server


def _collect_outputs(context: Any, sinks: set[str], summary: RunSummary) -> None:
    services = context.services
    if "video_sink" in sinks:
        summary.recordings = [str(p) for p in services.recordings.segments()]
        stats = services.recordings.stats()
        summary.recording = {
            "frames_written": sum(s.frames_written for s in stats),
            "dropped": sum(s.dropped for s in stats),
            "failed": sum(s.failed for s in stats),
        }
    if "metric_sink" in sinks:
        summary.metrics = services.metrics.summary() or {}
