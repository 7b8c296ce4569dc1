"""``ServeApp``: builds and owns everything ``coral serve`` runs, and stops it in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from coral_inference.app.preview.hub import PreviewHub
from coral_inference.app.serve.manager import StreamManagerHost
from coral_inference.app.serve.metrics import SeriesReader
from coral_inference.app.serve.pipelines import ModelResolver, PipelineService, pipeline_stats
from coral_inference.app.serve.recordings import RecordingIndex
from coral_inference.app.serve.relay import FrameRelayPatch, SlotReader, slot_path
from coral_inference.app.serve.security import Guard, HostPolicy
from coral_inference.app.serve.settings import ServeSettings
from coral_inference.app.serve.store import PipelineStore
from coral_inference.runtime.patching import PatchContext

log = logging.getLogger(__name__)

#: Folders inference's HttpInterface mounts relative to the working directory.
INFERENCE_STATIC = ("inference/landing/out/static", "inference/landing/out/_next/static")


def _relay_parent() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


class ServeApp:
    """The runtime context, stream manager, pipelines, preview hub and the ASGI app."""

    def __init__(self, context: Any, settings: ServeSettings, port: int) -> None:
        self.context = context
        self.settings = settings
        self.port = port
        self.restore_report: list[dict[str, Any]] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="coral-serve-", dir=_relay_parent()))
        self.relay_dir = self.workdir / "frames"
        self.relay_dir.mkdir()
        patch_context = PatchContext(context.config, context.inference, context.platform, "serve")
        relay = patch_context.apply(
            FrameRelayPatch(
                self.relay_dir,
                pipeline_stats(context.services),
                context.services.model_times.of,
            )
        )
        context.patches[relay.name] = relay
        config = context.config
        self.host = StreamManagerHost(
            grace=float(config.get("services.stream_manager.termination_grace_seconds", 5.0))
        )
        self.host.start()
        self.store = PipelineStore(settings.state_path)
        self.pipelines = PipelineService(
            self.host,
            self.store,
            self.relay_dir,
            ModelResolver(context, settings.model_dirs),
            start_timeout=float(config.get("services.stream_manager.start_timeout_seconds")),
            media_dirs=settings.media_dirs,
            max_pipelines=settings.max_pipelines,
        )
        self.hub = PreviewHub.from_settings(
            lambda pipeline_id: SlotReader(slot_path(self.relay_dir, pipeline_id)), settings
        )
        self.recordings = RecordingIndex(Path(config.get("services.recording.dir")))
        self.series = SeriesReader(config.section("services.metrics"))
        self.fastapi = self._inference_app()
        from coral_inference.app.serve.routes import build_router

        self.fastapi.router.routes[0:0] = build_router(self).routes
        self.asgi = Guard(
            self.fastapi,
            token=settings.token,
            port=port,
            hosts=HostPolicy.for_server(settings.host, settings.allowed_hosts),
            allowed_origins=settings.allowed_origins,
            body_limit=settings.body_limit_bytes,
            image_body_limit=settings.image_body_limit_bytes,
        )

    def _inference_app(self) -> Any:
        """inference's HttpInterface app; the static folders it mounts relative to the working
        directory are made in the work dir and pointed at absolutely. Its CORS middleware is
        taken out (the guard answers CORS, for the allowed origins only)."""
        from inference.core.interfaces.http.http_api import HttpInterface
        from inference.core.managers.base import ModelManager
        from inference.core.registries.roboflow import RoboflowModelRegistry
        from inference.models.utils import ROBOFLOW_MODEL_TYPES
        from starlette.middleware.cors import CORSMiddleware
        from starlette.staticfiles import StaticFiles

        for folder in INFERENCE_STATIC:
            (self.workdir / folder).mkdir(parents=True, exist_ok=True)
        previous = os.getcwd()
        os.chdir(self.workdir)
        try:
            interface = HttpInterface(ModelManager(RoboflowModelRegistry(ROBOFLOW_MODEL_TYPES)))
        finally:
            os.chdir(previous)
        for route in interface.app.routes:
            static = getattr(route, "app", None)
            if isinstance(static, StaticFiles):
                static.all_directories = [
                    str(self.workdir / d) if not os.path.isabs(d) else d
                    for d in static.all_directories
                ]
                static.directory = static.all_directories[0] if static.all_directories else None
        app = interface.app
        app.user_middleware = [
            m
            for m in app.user_middleware
            if not (isinstance(m.cls, type) and issubclass(m.cls, CORSMiddleware))
        ]
        return app

    async def restore(self) -> None:
        """Start the stored pipelines; the failures are kept with their reasons."""
        failed = await self.pipelines.restore()
        self.restore_report = [
            {"pipeline_id": p.record.pipeline_id, "name": p.record.name, "reason": p.error}
            for p in failed
        ]
        restored = len(self.pipelines.pipelines) - len(failed)
        log.info("restored %d pipeline(s), %d failed", restored, len(failed))
        for failure in self.restore_report:
            log.warning("pipeline %s not restored: %s", failure["pipeline_id"], failure["reason"])

    async def close_peers(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.hub.close_all(), timeout=2.0)

    def stop(self, grace: float) -> None:
        """Stop pipelines (recordings finalised, metrics flushed in their processes) within
        ``grace`` seconds, then release the server's own files. Pipelines that ended before
        are marked so in the store first (a restart does not run an ended file again)."""
        self.pipelines.describe_all()
        self.host.stop(grace)
        self.store.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
