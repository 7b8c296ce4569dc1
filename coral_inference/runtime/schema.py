"""The configuration schema: every key, its type, default and meaning, in one place.

The loader validates against it, ``coral config init`` renders it as a commented template, and
the README's reference is checked against it by a test, so none of them can drift.
"""

from __future__ import annotations

from typing import Any

from coral_inference.runtime.options import Option, Section

BUILTIN_PATCHES: tuple[str, ...] = (
    "local_models",
    "buffer_sink",
    "video_sink",
    "metric_sink",
    "stream_manager",
    "camera",
)


SCHEMA = Section(
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
            "patches.<name>: true|false for each patch plugin (built-ins listed; others default to on)",
            {name: Option("bool", True, f"the built-in {name} patch") for name in BUILTIN_PATCHES},
            values=Option("bool", True, "a third-party patch"),
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
                    "backends.options.<backend>: options handed to that backend",
                    values=Option(
                        "mapping",
                        {},
                        "options for one backend, e.g. onnx: {providers: [CPUExecutionProvider], threads: 2}",
                    ),
                ),
            },
        ),
        "models": Section(
            "models.<model_id>: path to a local model package (directory or archive)",
            values=Option("path", None, "a model package"),
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
                            "extra numeric/string keys of the predictions to store, e.g. [time]",
                        ),
                    },
                ),
                "buffer": Section(
                    "recent results kept per pipeline (buffer_sink)",
                    {"size": Option("int", 64, "entries in each pipeline's ring", minimum=1)},
                ),
                "webrtc": Section(
                    "WebRTC preview",
                    {"ice_servers": Option("list[str]", [], "STUN/TURN URLs")},
                ),
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


def walk(section: Section = SCHEMA, prefix: str = ""):
    """Yield (dotted path, Option | Section) for every key in the schema, depth first."""
    for key, node in section.keys.items():
        path = f"{prefix}{key}"
        yield path, node
        if isinstance(node, Section):
            yield from walk(node, f"{path}.")


def defaults(section: Section = SCHEMA) -> dict[str, Any]:
    """The nested default configuration."""
    out: dict[str, Any] = {}
    for key, node in section.keys.items():
        out[key] = defaults(node) if isinstance(node, Section) else _copy(node.default)
    return out


def _copy(value: Any) -> Any:
    return (
        list(value)
        if isinstance(value, list)
        else dict(value)
        if isinstance(value, dict)
        else value
    )
