"""The ``coral serve`` routes, put in front of inference's own (whose last route is a catch-all
static mount)."""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import re
import threading
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from coral_inference.app.preview.hub import OfferError
from coral_inference.app.serve.metrics import CONTENT_TYPE, exposition, parse_time
from coral_inference.app.serve.pipelines import PipelineNotFound, TooManyPipelines
from coral_inference.app.serve.recordings import RecordingPathError
from coral_inference.app.serve.security import session_cookie_name, session_value
from coral_inference.app.serve.settings import ServeError
from coral_inference.app.serve.static_files import STATIC_DIR
from coral_inference.app.serve.store import RESTART_POLICIES

PIPELINE_KEYS = {"model", "source", "name", "max_fps", "restart"}
#: A pipeline's name: up to 128 letters, digits, spaces and ``_ . : @ ( ) + # , -``.
NAME = re.compile(r"^[\w .:@()+#,-]{1,128}$")
MAX_REFERENCE = 2048
MAX_FPS = 1000
#: The static files a page may load (everything else there is 404).
STATIC_FILES = frozenset({"app.js", "login.js", "style.css"})
#: How long the login cookie lasts (30 days).
SESSION_SECONDS = 30 * 24 * 3600


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def json_body(request: Request) -> Any:
    """The request's JSON document (the guard checked syntax, depth and numbers); ServeError
    (400) when it is not JSON."""
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ServeError(f"the body is not JSON ({exc})") from None


def pipeline_request(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ServeError('expected {"model": ..., "source": ..., "name"?, "max_fps"?, "restart"?}')
    unknown = sorted(set(body) - PIPELINE_KEYS)
    if unknown:
        raise ServeError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(PIPELINE_KEYS))}"
        )
    for key in ("model", "source"):
        value = body.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ServeError(f'"{key}" must be a non-empty string')
        if len(value) > MAX_REFERENCE:
            raise ServeError(f'"{key}" is longer than {MAX_REFERENCE} characters')
    name = body.get("name")
    if name is not None and (not isinstance(name, str) or not NAME.match(name)):
        raise ServeError('"name" must be 1 to 128 letters, digits, spaces or _ . : @ ( ) + # , -')
    max_fps = body.get("max_fps")
    if max_fps is not None and (
        isinstance(max_fps, bool)
        or not isinstance(max_fps, (int, float))
        or not math.isfinite(max_fps)
        or not 0 < max_fps <= MAX_FPS
    ):
        raise ServeError(f'"max_fps" must be a number above 0 and at most {MAX_FPS}')
    restart = body.get("restart")
    if restart is not None and restart not in RESTART_POLICIES:
        raise ServeError(f'"restart" must be one of {", ".join(RESTART_POLICIES)}')
    return {key: body.get(key) for key in PIPELINE_KEYS}


def build_router(server: Any) -> APIRouter:
    """Routes over the pieces ``server`` (a :class:`~coral_inference.app.serve.app.ServeApp`)
    owns."""
    router = APIRouter()
    service, hub = server.pipelines, server.hub

    token: str | None = server.settings.token
    cookie = session_cookie_name(server.port)

    @router.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> dict[str, Any]:
        if not request.state.coral_authorised:
            return {"status": "ok"}
        return {
            "status": "ok",
            "pipelines": len(service.pipelines),
            "viewers": hub.viewers,
            "threads": threading.active_count(),
            "tasks": len(asyncio.all_tasks()),
        }

    @router.get("/login", include_in_schema=False)
    async def login_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "login.html", media_type="text/html")

    @router.post("/coral/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        """``{"token": ...}`` -> the session cookie (HttpOnly, SameSite=Strict)."""
        try:
            body = await json_body(request)
        except ServeError as exc:
            return error(400, str(exc))
        given = body.get("token") if isinstance(body, dict) else None
        if token is None:
            return JSONResponse({"login": "this server has no token"})
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
            return error(401, "wrong token")
        response = JSONResponse({"login": "ok"})
        response.set_cookie(
            cookie,
            session_value(token),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    @router.post("/coral/logout", include_in_schema=False)
    async def logout() -> Response:
        response = JSONResponse({"logout": "ok"})
        response.delete_cookie(cookie, path="/", httponly=True, samesite="strict")
        return response

    @router.get("/coral/pipelines")
    async def list_pipelines() -> dict[str, Any]:
        return {"pipelines": service.describe_all(), "restore_failures": server.restore_report}

    @router.post("/coral/pipelines")
    async def create_pipeline(request: Request) -> Response:
        try:
            spec = pipeline_request(await json_body(request))
            pipeline = await service.create(**spec)
        except TooManyPipelines as exc:
            return error(429, str(exc))
        except ServeError as exc:
            return error(400, str(exc))
        return JSONResponse({"pipeline_id": pipeline.record.pipeline_id}, status_code=201)

    @router.get("/coral/pipelines/{pipeline_id}")
    async def get_pipeline(pipeline_id: str) -> Response:
        try:
            return JSONResponse(service.describe(service.get(pipeline_id)))
        except PipelineNotFound as exc:
            return error(404, str(exc))

    @router.delete("/coral/pipelines/{pipeline_id}")
    async def delete_pipeline(pipeline_id: str) -> Response:
        try:
            service.get(pipeline_id)
        except PipelineNotFound as exc:
            return error(404, str(exc))
        await hub.close_pipeline(pipeline_id, "pipeline deleted")
        await service.delete(pipeline_id)
        return JSONResponse({"pipeline_id": pipeline_id, "deleted": True})

    @router.post("/inference_pipelines/{pipeline_id}/offer")
    async def offer(pipeline_id: str, request: Request) -> Response:
        try:
            service.get(pipeline_id)
            answer = await hub.answer(pipeline_id, await json_body(request))
        except PipelineNotFound as exc:
            return error(404, str(exc))
        except OfferError as exc:
            return error(exc.status, str(exc))
        except ServeError as exc:
            return error(400, str(exc))
        return JSONResponse(answer)

    @router.get("/coral/recordings")
    async def list_recordings(pipeline_id: str | None = None) -> Response:
        try:
            segments = await asyncio.to_thread(server.recordings.segments, pipeline_id)
        except RecordingPathError as exc:
            return error(exc.status, str(exc))
        return JSONResponse({"recordings": segments})

    @router.get("/coral/recordings/{pipeline_id}/{file:path}")
    async def recording(pipeline_id: str, file: str) -> Response:
        try:
            path = server.recordings.resolve(pipeline_id, file)
        except RecordingPathError as exc:
            return error(exc.status, str(exc))
        media_type = "application/x-ndjson" if path.suffix == ".jsonl" else "video/mp4"
        return FileResponse(path, media_type=media_type)

    @router.get("/coral/metrics/{pipeline_id}")
    async def metric_series(
        pipeline_id: str, since: str | None = None, until: str | None = None
    ) -> Response:
        try:
            points = await asyncio.to_thread(
                server.series.series, pipeline_id, parse_time(since), parse_time(until)
            )
        except ServeError as exc:
            return error(400, str(exc))
        return JSONResponse({"pipeline_id": pipeline_id, "points": points})

    @router.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        text = exposition(service.describe_all(), server.context.state, hub.viewers)
        return Response(text, media_type=CONTENT_TYPE)

    @router.get("/coral/runtime")
    async def runtime() -> dict[str, Any]:
        state = server.context.state
        return {k: state[k] for k in ("platform", "versions", "backends", "patches", "plugins")}

    @router.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @router.get("/coral/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC_FILES:
            return error(404, f"no file {name!r}")
        return FileResponse(STATIC_DIR / name)

    return router
