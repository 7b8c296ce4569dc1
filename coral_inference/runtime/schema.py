"""The configuration schema: the core's keys, and how plugins' declared sections join them.

:data:`CORE` holds every key the core itself reads. :func:`compose` adds what the installed
plugins bring (``patches.<name>`` for every patch entry point, the sections plugins declare
through ``declare_options``) and closes the open maps, so an unknown patch or backend option is
an error with a did-you-mean. The loader validates against the composed schema, ``coral config
init`` renders it as a commented template, and the README's reference is generated from it.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from coral_inference.runtime.options import Node, Option, Section


@functools.cache
def builtin_patches() -> tuple[str, ...]:
    """The patches coral-inference itself ships: its own ``coral_inference.patches`` entry
    points, so ``pyproject.toml`` is the one list of them (their config keys validate even when
    ``plugins.only`` leaves them out)."""
    entry_points = importlib.metadata.distribution("coral-inference").entry_points
    return tuple(ep.name for ep in entry_points.select(group="coral_inference.patches"))


def _influxdb_needs_url(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    url = values.get("url")
    if values.get("store") == "influxdb" and not url:
        return [("url", "store is influxdb: set the server's base URL, e.g. http://127.0.0.1:8086")]
    if url and not str(url).startswith(("http://", "https://")):
        return [("url", f"must start with http:// or https://, got {url!r}")]
    return []


#: ``services.serve``: the settings of ``coral serve`` (README "Security" explains each).
SERVE_SECTION = Section(
    "coral serve: pipelines over HTTP, preview, dashboard, Prometheus",
    {
        "token": Option(
            "str",
            None,
            "bearer token (16+ characters) every route but GET /healthz and the login page "
            "needs; off loopback one is generated when none is given",
            nullable=True,
        ),
        "token_file": Option(
            "path",
            None,
            "file holding the token (first line); keeps it out of the process list",
            nullable=True,
        ),
        "state_path": Option(
            "path", "./coral-output/serve.db", "SQLite file of the pipelines to restore"
        ),
        "grace_seconds": Option(
            "float", 10.0, "longest wait for pipelines to stop on SIGTERM/SIGINT", minimum=0
        ),
        "body_limit_bytes": Option(
            "int", 65536, "largest JSON body of the coral routes (larger: 413)", minimum=1024
        ),
        "image_body_limit_bytes": Option(
            "int",
            16777216,
            "largest body of inference's own routes (images in base64; larger: 413)",
            minimum=1024,
        ),
        "sdp_limit_bytes": Option(
            "int", 32768, "largest WebRTC offer SDP (larger: 413)", minimum=1024
        ),
        "viewer_queue": Option("int", 2, "frames waiting per preview viewer", minimum=1),
        "max_viewers": Option("int", 16, "open preview peer connections at most", minimum=1),
        "max_viewers_per_pipeline": Option(
            "int", 4, "open preview peer connections per pipeline at most", minimum=1
        ),
        "viewer_connect_seconds": Option(
            "float", 30.0, "a viewer not connected this long after its offer is closed", minimum=1
        ),
        "max_pipelines": Option("int", 8, "pipelines at most (more: 429)", minimum=1),
        "allowed_origins": Option(
            "list[str]",
            [],
            "web origins (scheme://host[:port]) allowed to call the API from a browser (CORS)",
        ),
        "allowed_hosts": Option(
            "list[str]",
            [],
            "Host header names accepted besides loopback names and the bound address "
            "('.example.org' matches subdomains, '*' any)",
        ),
        "allow_code_execution": Option(
            "bool",
            False,
            "let workflows run custom Python and reach files/environment: a token holder "
            "can then run code as this user",
        ),
        "media_dirs": Option(
            "list[str]", [], "directories whose video files may be pipeline sources"
        ),
        "model_dirs": Option(
            "list[str]", [], "directories whose model packages may be given by path"
        ),
    },
)


CORE = Section(
    "coral-inference runtime configuration",
    {
        "platform": Option(
            "str",
            "auto",
            "chip platform; auto reads the device tree / Jetson release file",
            choices=("auto", "cpu", "rknn", "jetson"),
        ),
        "strict": Option(
            "bool", False, "any failed/invalid/incompatible plugin or patch -> non-zero exit"
        ),
        "plugins": Section(
            "which discovered plugins load (names as `coral plugins list` shows them)",
            {
                "disabled": Option("list[str]", [], "plugins never imported"),
                "only": Option(
                    "list[str]",
                    None,
                    "allow-list: when set, only these plugins load",
                    nullable=True,
                ),
            },
        ),
        "patches": Section(
            "patches.<name>: true|false (or {enabled: ..., settings}) for each installed patch",
            values=Section(
                "a patch",
                {"enabled": Option("bool", True, "apply this patch")},
                values=Option("any", None, "a setting of this patch"),
                switch=True,
            ),
        ),
        "backends": Section(
            "chip backends",
            {
                "preferred": Option("list[str]", ["rknn", "onnx"], "first available backend wins"),
                "modules": Option(
                    "list[str]",
                    [],
                    "extra modules with @hookimpl register_backend, imported at init",
                ),
                "auto_discover": Option("bool", True, "load backends from entry points"),
                "options": Section(
                    "backends.options.<backend>: the typed options each backend declares",
                    values=Option("mapping", {}, "options of one backend"),
                ),
            },
        ),
        "models": Section(
            "models.<model_id>: path to a local model package (directory or archive)",
            values=Option("path", None, "a model package"),
        ),
        "sources": Section(
            "live video sources (RTSP/HTTP streams, cameras)",
            {
                "reconnect_timeout_s": Option(
                    "float",
                    300.0,
                    "stop when a stream that went away sends nothing for this long (0: never)",
                    minimum=0,
                ),
            },
        ),
        "services": Section(
            "services the patches use",
            {
                "recording": Section(
                    "annotated recordings (video_sink)",
                    {
                        "dir": Option("path", "./coral-output/recordings", "root directory"),
                        "segment_seconds": Option("float", 60.0, "length of one file", minimum=1),
                        "max_total_gb": Option(
                            "float", 10.0, "delete oldest beyond this", minimum=0
                        ),
                        "max_age_days": Option("float", 7.0, "delete older files", minimum=0),
                        "codec": Option(
                            "str", "auto", "video codec", choices=("auto", "h264", "mp4v")
                        ),
                        "queue_size": Option("int", 64, "frames waiting for the writer", minimum=1),
                        "track": Option(
                            "bool", True, "SEGMENT.jsonl beside each segment: its detections"
                        ),
                        "retain": Option(
                            "str",
                            "all",
                            "detections: keep only segments with a detection near them",
                            choices=("all", "detections"),
                        ),
                        "pre_seconds": Option(
                            "float", 5.0, "retain: detections: kept before an event", minimum=0
                        ),
                        "post_seconds": Option(
                            "float", 5.0, "retain: detections: kept after an event", minimum=0
                        ),
                    },
                ),
                "metrics": Section(
                    "per-frame metrics (metric_sink)",
                    {
                        "store": Option(
                            "str", "sqlite", "where points go", choices=("sqlite", "influxdb")
                        ),
                        "path": Option("path", "./coral-output/metrics.db", "SQLite file"),
                        "url": Option(
                            "str",
                            None,
                            "InfluxDB base URL, e.g. http://127.0.0.1:8086",
                            nullable=True,
                        ),
                        "database": Option("str", "coral", "InfluxDB database / bucket"),
                        "create_database": Option(
                            "bool",
                            True,
                            "InfluxDB 1.x: CREATE DATABASE when the server says it is missing",
                        ),
                        "token": Option(
                            "str",
                            None,
                            "InfluxDB token (sent as Authorization: Token)",
                            nullable=True,
                        ),
                        "batch_size": Option("int", 500, "points per write", minimum=1),
                        "flush_seconds": Option(
                            "float", 1.0, "longest wait before a write", minimum=0.01
                        ),
                        "buffer_max": Option(
                            "int", 100000, "points kept while the store is down", minimum=1
                        ),
                        "fields": Option(
                            "list[str]",
                            [],
                            "extra numeric/string keys of the predictions to store, e.g."
                            " [inference_id] (their time is latency_ms already)",
                        ),
                    },
                    checks=(_influxdb_needs_url,),
                ),
                "buffer": Section(
                    "recent results kept per pipeline (buffer_sink)",
                    {"size": Option("int", 64, "entries in each pipeline's ring", minimum=1)},
                ),
                "webrtc": Section(
                    "WebRTC preview",
                    {
                        "ice_servers": Option("list[str]", [], "STUN/TURN URLs"),
                        "preview_allow_remote": Option(
                            "bool",
                            False,
                            "let coral run --preview listen on a non-loopback address (it has no token: anyone who reaches it can watch)",
                        ),
                    },
                ),
                "serve": SERVE_SECTION,
                "stream_manager": Section(
                    "stream manager hardening (stream_manager)",
                    {
                        "command_timeout_seconds": Option(
                            "float", 30.0, "longest wait for a pipeline command", minimum=0.1
                        ),
                        "start_timeout_seconds": Option(
                            "float",
                            120.0,
                            "longest wait for a pipeline to start (init/webrtc: model loading)",
                            minimum=0.1,
                        ),
                        "lock_timeout_seconds": Option(
                            "float",
                            10.0,
                            "wait for a busy pipeline before answering busy",
                            minimum=0.1,
                        ),
                        "health_check_seconds": Option(
                            "float", 10.0, "interval of pipeline health checks", minimum=0.1
                        ),
                        "failure_budget": Option(
                            "int", 3, "failed health checks before a pipeline is killed", minimum=1
                        ),
                        "termination_grace_seconds": Option(
                            "float", 5.0, "wait after terminate before kill", minimum=0
                        ),
                    },
                ),
            },
        ),
    },
)


@dataclass
class PluginOptions:
    """What the installed plugins contribute to the schema.

    Attributes:
        patch_names: Every entry point name of the ``coral_inference.patches`` group (known from
            metadata, nothing imported).
        declared: ``path -> Section`` from the loaded plugins' ``declare_options`` hooks.
        unchecked: ``path -> reason`` for sections of plugins that did not load: accepted as
            they are, since nothing declared their keys.
    """

    patch_names: Iterable[str] = ()
    declared: Mapping[str, Section] = field(default_factory=dict)
    unchecked: Mapping[str, str] = field(default_factory=dict)


def compose(plugins: PluginOptions | None) -> Section:
    """The full schema: :data:`CORE` plus ``plugins``; ``None`` leaves the plugin-owned maps
    open (the first pass of the loader, before plugins can be asked)."""
    if plugins is None:
        return LENIENT
    declared = dict(plugins.declared)
    patches: dict[str, Node] = {}
    for name in sorted(set(plugins.patch_names) | set(builtin_patches())):
        own = declared.pop(f"patches.{name}", None)
        patches[name] = Section(
            own.help if own else f"the {name} patch",
            {
                "enabled": Option("bool", True, f"apply the {name} patch"),
                **(own.keys if own else {}),
            },
            switch=True,
            checks=own.checks if own else (),
        )
    backend_options: dict[str, Node] = {}
    services: dict[str, Node] = dict(_section(CORE, "services").keys)
    for path, section in declared.items():
        group, _, name = path.rpartition(".")
        if group == "backends.options":
            backend_options[name] = section
        elif group == "services":
            services[name] = section
    for path, why in plugins.unchecked.items():
        group, _, name = path.rpartition(".")
        placeholder = Option("any", {}, f"not checked: {why}", nullable=True)
        if group == "backends.options":
            backend_options.setdefault(name, placeholder)
        elif group == "services":
            services.setdefault(name, placeholder)
    backends = _section(CORE, "backends")
    return _replace(
        CORE,
        patches=Section(_section(CORE, "patches").help, patches),
        backends=_replace(
            backends,
            options=Section(_section(backends, "options").help, backend_options),
        ),
        services=Section(_section(CORE, "services").help, services),
    )


#: Where plugins may declare sections: ``<prefix><name>``.
DECLARABLE = ("backends.options.", "patches.", "services.")


def declarable(path: str) -> bool:
    """Whether a plugin may declare a section at ``path``."""
    return any(
        path.startswith(prefix) and path[len(prefix) :].isidentifier() for prefix in DECLARABLE
    ) and path not in {f"services.{name}" for name in _section(CORE, "services").keys}


def _section(section: Section, key: str) -> Section:
    node = section.keys[key]
    assert isinstance(node, Section)
    return node


def _replace(section: Section, **keys: Section) -> Section:
    return Section(
        section.help, {**section.keys, **keys}, section.values, section.switch, section.checks
    )


#: A section of a plugin not asked yet: any keys, any values (checked in the second pass).
_OPEN = Section("a plugin's section", values=Option("any", None, "a plugin's setting"))

#: The first pass's schema: the core's keys, with the maps plugins extend left open.
LENIENT = _replace(
    CORE,
    backends=_replace(
        _section(CORE, "backends"),
        options=Section(_section(_section(CORE, "backends"), "options").help, values=_OPEN),
    ),
    services=Section(
        _section(CORE, "services").help, _section(CORE, "services").keys, values=_OPEN
    ),
)
