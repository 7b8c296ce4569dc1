"""The ``services.mqtt`` section and the settings read from it."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coral_inference.runtime.options import Option, Section

OPTIONS_PATH = "services.mqtt"

#: Characters MQTT gives a meaning in topic filters; never part of a topic level we build.
WILDCARDS = ("+", "#")


class MqttConfigError(ValueError):
    """A ``services.mqtt`` value that cannot work; the message names the key and the fix."""


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Cross-field rules of ``services.mqtt``."""
    problems = []
    if values.get("password_file") and not values.get("username"):
        problems.append(
            ("password_file", "a password needs services.mqtt.username; set it, or drop the file")
        )
    prefix = str(values.get("topic_prefix") or "")
    if not prefix.strip("/") or any(w in prefix for w in WILDCARDS):
        problems.append(
            ("topic_prefix", f"{prefix!r} is not a topic prefix: give a name without + or #")
        )
    discovery = str(values.get("discovery_prefix") or "")
    if not discovery.strip("/") or any(w in discovery for w in WILDCARDS):
        problems.append(
            ("discovery_prefix", f"{discovery!r} is not a topic prefix: give a name without + or #")
        )
    return problems


OPTIONS = Section(
    "MQTT events and Home Assistant discovery (coral-inference-mqtt)",
    {
        "enabled": Option("bool", False, "publish detection events; nothing connects unless true"),
        "host": Option("str", "localhost", "the broker's host name or address"),
        "port": Option(
            "int", 1883, "the broker's port (8883 is the usual TLS port)", minimum=1, maximum=65535
        ),
        "username": Option(
            "str", None, "user name the broker expects (null: anonymous)", nullable=True
        ),
        "password_file": Option(
            "path", None, "file whose first line is username's password", nullable=True
        ),
        "tls": Option("bool", False, "TLS, checking the broker's certificate with the system CAs"),
        "topic_prefix": Option(
            "str",
            "coral",
            "topics: PREFIX/PIPELINE/events, PREFIX/PIPELINE/counts, PREFIX/availability",
        ),
        "client_id": Option("str", None, "MQTT client id (null: coral-HOST-PID)", nullable=True),
        "qos": Option("int", 1, "QoS of events and counts (1: at least once)", choices=(0, 1, 2)),
        "min_interval_ms": Option(
            "int",
            0,
            "least time between two update events of one class (start/end go at once)",
            minimum=0,
        ),
        "hysteresis_frames": Option(
            "int",
            3,
            "frames a class's appearance, new count or absence must hold to be reported",
            minimum=1,
        ),
        "queue_size": Option(
            "int",
            1000,
            "messages kept while the broker is away; past it the oldest are dropped (counted)",
            minimum=1,
        ),
        "flush_timeout_s": Option(
            "float",
            10.0,
            "at exit, how long buffered messages may take to reach the broker",
            minimum=0,
        ),
        "discovery": Option("bool", True, "publish Home Assistant MQTT discovery configs"),
        "discovery_prefix": Option("str", "homeassistant", "Home Assistant's discovery prefix"),
    },
    checks=(_check,),
)


@dataclass(frozen=True)
class MqttSettings:
    """``services.mqtt``, typed."""

    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password_file: str | None = None
    tls: bool = False
    topic_prefix: str = "coral"
    client_id: str | None = None
    qos: int = 1
    min_interval_ms: int = 0
    hysteresis_frames: int = 3
    queue_size: int = 1000
    flush_timeout_s: float = 10.0
    discovery: bool = True
    discovery_prefix: str = "homeassistant"

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> MqttSettings:
        """The settings from the merged ``services.mqtt`` values (defaults for what is unset)."""
        known = {k: v for k, v in section.items() if k in cls.__dataclass_fields__}
        if known.get("password_file") is not None:
            known["password_file"] = str(known["password_file"])
        for key in ("topic_prefix", "discovery_prefix"):
            if key in known:
                known[key] = str(known[key]).strip("/")
        return cls(**known)

    @property
    def broker(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"

    def resolved_client_id(self) -> str:
        """The configured client id, or ``coral-HOST-PID`` (unique per process)."""
        return self.client_id or f"coral-{socket.gethostname()}-{os.getpid()}"

    def password(self) -> str | None:
        """The password from ``password_file`` (its first line), or None without one."""
        if not self.password_file:
            return None
        path = Path(self.password_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MqttConfigError(
                f"services.mqtt.password_file: cannot read {path} ({exc.strerror or exc}); "
                "point it at a readable file holding the broker password"
            ) from None
        lines = text.splitlines()
        if not lines or not lines[0]:
            raise MqttConfigError(
                f"services.mqtt.password_file: {path} is empty; its first line is the password"
            )
        return lines[0]
