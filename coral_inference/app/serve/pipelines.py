"""``/coral/pipelines``: a model and a source in, one stream-manager pipeline process out.

A pipeline is an INIT command to inference's stream manager running a one-step workflow (the
model as ``roboflow_core/roboflow_object_detection_model@v1``), with the extra key
``coral_pipeline_id`` so the forked process names its recordings, metrics and frame slot after
the id this service gave it, which stays the same when a restart restores it. Its live numbers
(frames, fps, latency, recorder and metric counters) come from the document its process
publishes with every frame in its relay slot (:mod:`~coral_inference.app.serve.relay`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coral_inference.app.serve.access import allowed_source, check_model_path_allowed
from coral_inference.app.serve.credentials import mask_credentials
from coral_inference.app.serve.manager import StreamManagerHost
from coral_inference.app.serve.relay import SlotReader, slot_path
from coral_inference.app.serve.settings import ServeError
from coral_inference.app.serve.store import PipelineRecord, PipelineStore, default_restart
from coral_inference.patches.local_models import LocalModelsPatch
from coral_inference.patches.stream_manager import NAME_KEY
from coral_inference.runtime.patching import PatchContext

log = logging.getLogger(__name__)

MODEL_STEP = "roboflow_core/roboflow_object_detection_model@v1"


class PipelineNotFound(ServeError):
    """No pipeline with that id."""


class TooManyPipelines(ServeError):
    """``services.serve.max_pipelines`` are running already."""


def detection_workflow(model_id: str) -> dict[str, Any]:
    """The workflow a pipeline runs: one object-detection step, its predictions out."""
    return {
        "version": "1.0",
        "inputs": [{"type": "WorkflowImage", "name": "image"}],
        "steps": [
            {"type": MODEL_STEP, "name": "model", "image": "$inputs.image", "model_id": model_id}
        ],
        "outputs": [
            {"type": "JsonField", "name": "predictions", "selector": "$steps.model.predictions"}
        ],
    }


class PackageModelsPatch(LocalModelsPatch):
    """Model packages given by path to ``POST /coral/pipelines`` as model ids (the
    ``local_models`` mechanism for ids ``coral serve`` made up); re-applied with every new
    package, so pipeline processes forked afterwards resolve it."""

    name = "serve_models"
    description = "coral serve: model packages given by path, as model ids"

    def __init__(self, models: dict[str, str]) -> None:
        self.models = dict(models)

    def not_needed(self, context: PatchContext) -> str | None:
        return None if self.models else "no model package given by path"

    def settings(self, context: PatchContext) -> object:
        return sorted(self.models.items())

    def install(self, patcher: Any, targets: dict, context: PatchContext) -> None:
        from coral_inference.models.inference_models import inference_model_class
        from coral_inference.patches.local_models import GENERIC_MODELS, MODEL_TYPES, model_type_key
        from coral_inference.runtime import current

        for model_id, path in sorted(self.models.items()):
            key = model_type_key(model_id)
            patcher.set_item(targets[GENERIC_MODELS], model_id, key)
            patcher.set_item(targets[MODEL_TYPES], key, inference_model_class(Path(path), current))


class ModelResolver:
    """A request's ``model`` as a model id: a configured ``models.<id>``, or the path of a
    package inside ``model_dirs`` (loaded and validated here, registered through
    :class:`PackageModelsPatch`)."""

    def __init__(self, context: Any, model_dirs: tuple[Path, ...]) -> None:
        self.context = context
        self.model_dirs = model_dirs
        self.configured: dict[str, str] = dict(context.config.section("models"))
        self.packages: dict[str, str] = {}

    def resolve(self, reference: str) -> str:
        if reference in self.configured or reference in self.packages:
            return reference
        check_model_path_allowed(reference, self.model_dirs)
        path = Path(reference).expanduser()
        if not path.exists():
            raise ServeError(f"model package {reference!r} does not exist")
        from coral_inference.models.errors import ModelPackageError
        from coral_inference.models.package import load_package

        try:
            package = load_package(path, decoders=self.context.decoders)
        except ModelPackageError as error:
            raise ServeError(str(error)) from None
        root = str(package.root.resolve())
        for model_id, known_path in self.packages.items():
            if known_path == root:
                return model_id
        model_id = package.manifest.name
        if model_id in self.configured or model_id in self.packages:
            model_id = f"{model_id}-{hashlib.sha1(root.encode()).hexdigest()[:6]}"
        self.packages[model_id] = root
        context = self.context
        patch_context = PatchContext(context.config, context.inference, context.platform, "serve")
        record = patch_context.apply(PackageModelsPatch(self.packages))
        context.patches[record.name] = record
        if record.status != "applied":
            del self.packages[model_id]
            raise ServeError(f"model package {reference!r} cannot be served: {record.reason}")
        return model_id


def check_source(source: str, media_dirs: tuple[Path, ...]) -> str | int:
    """A source as the stream manager takes it; one this server does not open to requests
    (:mod:`~coral_inference.app.serve.access`), or a missing or unreadable file, is a
    ServeError."""
    from coral_inference.app.run import RunError, parse_source

    try:
        return parse_source(allowed_source(source, media_dirs))
    except RunError as error:
        raise ServeError(mask_credentials(str(error))) from None


@dataclass
class Pipeline:
    """A pipeline this server knows: what it was asked, its process, its state."""

    record: PipelineRecord
    manager_id: str | None = None
    status: str = "starting"
    error: str | None = None
    reader: SlotReader | None = field(default=None, repr=False)


class PipelineService:
    """Creates, lists and deletes pipelines; restores the stored ones."""

    def __init__(
        self,
        host: StreamManagerHost,
        store: PipelineStore,
        relay_dir: Path,
        models: ModelResolver,
        start_timeout: float,
        media_dirs: tuple[Path, ...] = (),
        max_pipelines: int = 8,
    ) -> None:
        self.host = host
        self.store = store
        self.relay_dir = relay_dir
        self.models = models
        self.start_timeout = start_timeout
        self.media_dirs = media_dirs
        self.max_pipelines = max_pipelines
        self.pipelines: dict[str, Pipeline] = {}

    def _client(self) -> Any:
        from inference.core.interfaces.stream_manager.api.stream_manager_client import (
            StreamManagerClient,
        )

        return StreamManagerClient.init(
            host="127.0.0.1", port=self.host.port, operations_timeout=self.start_timeout
        )

    async def create(
        self,
        model: str,
        source: str,
        name: str | None = None,
        max_fps: float | None = None,
        restart: str | None = None,
    ) -> Pipeline:
        """Check the model and source, store the pipeline, start it; ServeError if it can't,
        :class:`TooManyPipelines` when ``max_pipelines`` are there already."""
        self._check_room()
        await asyncio.to_thread(self.models.resolve, model)
        await asyncio.to_thread(check_source, source, self.media_dirs)
        pipeline_id = uuid.uuid4().hex[:12]
        record = PipelineRecord(
            pipeline_id,
            name or pipeline_id,
            model,
            source,
            max_fps,
            time.time(),
            restart=restart or default_restart(source),
        )
        # checked again with no await before start() takes its place: concurrent requests
        # cannot pass the limit together
        self._check_room()
        pipeline = await self.start(record)
        if pipeline.status == "failed":
            self.pipelines.pop(pipeline_id, None)
            raise ServeError(f"pipeline did not start: {pipeline.error}")
        self.store.add(record)
        return pipeline

    def _check_room(self) -> None:
        if len(self.pipelines) >= self.max_pipelines:
            raise TooManyPipelines(
                f"{len(self.pipelines)} pipelines exist, the most this server runs "
                "(services.serve.max_pipelines): delete one first"
            )

    async def start(self, record: PipelineRecord) -> Pipeline:
        """Send the INIT command; the pipeline ends up ``running`` or ``failed`` (with why)."""
        pipeline = self.pipelines[record.pipeline_id] = Pipeline(
            record, reader=SlotReader(slot_path(self.relay_dir, record.pipeline_id))
        )
        try:
            model_id = await asyncio.to_thread(self.models.resolve, record.model)
            reference = await asyncio.to_thread(check_source, record.source, self.media_dirs)
            command = {
                "type": "init",
                NAME_KEY: record.pipeline_id,
                "video_configuration": {
                    "type": "VideoConfiguration",
                    "video_reference": reference,
                    "max_fps": record.max_fps,
                    # None: the source's own defaults (every frame of a file, the newest of a
                    # stream) instead of the stream manager's drop-oldest for everything.
                    "source_buffer_filling_strategy": None,
                    "source_buffer_consumption_strategy": None,
                },
                "processing_configuration": {
                    "type": "WorkflowConfiguration",
                    "workflow_specification": detection_workflow(model_id),
                },
            }
            response = await self._client()._handle_command(command)
        except Exception as error:  # noqa: BLE001 - the reason is reported, the server goes on
            pipeline.status, pipeline.error = "failed", _reason(error)
            log.warning("pipeline %s failed to start: %s", record.pipeline_id, pipeline.error)
            return pipeline
        pipeline.manager_id = response.get("pipeline_id")
        pipeline.status = "running"
        log.info("pipeline %s started (%s)", record.pipeline_id, pipeline.manager_id)
        return pipeline

    async def restore(self) -> list[Pipeline]:
        """Start every stored pipeline whose restart policy says so (the others are listed as
        they were left: ``ended``, or ``stopped``); returns those that failed to start (each
        with its reason)."""
        failed = []
        for record in self.store.all():
            if not record.starts_again():
                status = record.state if record.state in ("ended", "failed") else "stopped"
                self.pipelines[record.pipeline_id] = Pipeline(record, status=status)
                continue
            pipeline = await self.start(record)
            if pipeline.status == "failed":
                failed.append(pipeline)
        return failed

    def get(self, pipeline_id: str) -> Pipeline:
        try:
            return self.pipelines[pipeline_id]
        except KeyError:
            raise PipelineNotFound(f"no pipeline {pipeline_id!r}") from None

    async def delete(self, pipeline_id: str) -> None:
        pipeline = self.get(pipeline_id)
        if pipeline.manager_id and self.host.is_alive(pipeline.manager_id):
            try:
                await self._client().terminate_pipeline(pipeline.manager_id)
            except Exception as error:  # noqa: BLE001 - killed below if it would not stop
                log.warning("pipeline %s did not terminate cleanly: %s", pipeline_id, error)
        managed = self.host.processes.get(pipeline.manager_id or "")
        if managed is not None:
            await asyncio.to_thread(self.host.retire, pipeline.manager_id, managed)
        self.store.remove(pipeline_id)
        del self.pipelines[pipeline_id]
        if pipeline.reader is not None:
            pipeline.reader.close()

    def describe(self, pipeline: Pipeline) -> dict[str, Any]:
        """The pipeline as ``GET /coral/pipelines`` lists it."""
        # The end flag is read before the document: the writer publishes its final counters,
        # then flags the slot, so a flag seen first means the document read after is final.
        ended = pipeline.reader is not None and pipeline.reader.ended
        meta = (pipeline.reader.meta() if pipeline.reader is not None else None) or {}
        status = pipeline.status
        if status == "running":
            if ended:
                status = "ended"
            elif not (pipeline.manager_id and self.host.is_alive(pipeline.manager_id)):
                # Out of the stream manager's table: ended, unless its process is still
                # closing its sinks (a retired pipeline writes its last frames, then flags the
                # slot with its final counters): until then it still runs.
                if not meta:
                    status = "stopped"
                elif not _process_alive(meta.get("pid")):
                    status = "ended"
        if status in ("ended", "failed") and pipeline.record.state != status:
            pipeline.record.state = status  # kept: a restart does not run an ended file again
            self.store.set_state(pipeline.record.pipeline_id, status)
        stats = meta.get("stats") or {}
        record = pipeline.record.to_dict()
        del record["state"]  # "status" says it, live
        return {
            **record,
            "source": mask_credentials(pipeline.record.source),
            "status": status,
            "error": pipeline.error,
            "frames": meta.get("frames", 0),
            "fps": meta.get("fps", 0.0),
            "latency_ms": _p50_p95(meta, "latency_ms"),
            "end_to_end_ms": _p50_p95(meta, "end_to_end_ms"),
            "detections": meta.get("detections", 0),
            "source_health": meta.get("source") or {},
            "recording": stats.get("recording", {}),
            "metrics": stats.get("metrics", {}),
            "frame_sinks": stats.get("frame_sinks", {}),
        }

    def describe_all(self) -> list[dict[str, Any]]:
        return [self.describe(p) for p in list(self.pipelines.values())]


def _process_alive(pid: Any) -> bool:
    """Whether the process ``pid`` (a slot writer's) still exists."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _p50_p95(meta: dict[str, Any], key: str) -> dict[str, float | None]:
    """The relay document's quantiles under ``key`` (None before the first frame)."""
    quantiles = meta.get(key) or {}
    return {"p50": quantiles.get("p50"), "p95": quantiles.get("p95")}


def _reason(error: BaseException) -> str:
    message = getattr(error, "public_message", None) or str(error) or type(error).__name__
    return mask_credentials(" ".join(str(message).split()))


def pipeline_stats(services: Any) -> Any:
    """``pipeline_id -> collect()``: the counters a pipeline process publishes with its frames
    (its recorders', its metric writer's and the plugins' frame sinks', read from the runtime's
    services in that process)."""

    def for_pipeline(pipeline_id: str) -> Any:
        def collect() -> dict[str, Any]:
            return {
                "recording": services.recordings.live(pipeline_id),
                "metrics": services.metrics.writer_stats(),
                "frame_sinks": services.frame_sinks.stats(pipeline_id),
            }

        return collect

    return for_pipeline
