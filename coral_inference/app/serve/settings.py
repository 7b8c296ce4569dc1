"""The settings of ``coral serve``: the flags, and the ``services.serve`` section (declared in
:mod:`coral_inference.runtime.schema`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECTION_PATH = "services.serve"


def check_inference_supported(installed: str | None = None) -> None:
    """Raise :class:`ServeError` when ``installed`` (default: the installed inference's version)
    is outside the lines whose stream manager ``coral serve`` is tested against: the patches'
    :data:`~coral_inference.patches.TESTED_INFERENCE` (0.54's module layout, and 1.x's, where the
    stream manager moved to ``streamvision`` and its handler takes the pipeline host)."""
    from coral_inference.patches import TESTED_INFERENCE
    from coral_inference.runtime import compat

    version = installed if installed is not None else compat.installed_inference().version
    check = compat.check_range(version, TESTED_INFERENCE)
    if not check.ok:
        raise ServeError(
            f"coral serve is tested with inference {TESTED_INFERENCE}: {check.reason}; "
            f"install 'inference-cpu{TESTED_INFERENCE}'"
        )


class ServeError(RuntimeError):
    """``coral serve`` cannot start or a request cannot be served; the message says why."""


@dataclass(frozen=True)
class ServeSettings:
    """Everything the server needs besides the runtime config."""

    host: str = "127.0.0.1"
    port: int = 9001
    token: str | None = None
    no_auth: bool = False
    restore: bool = True
    state_path: Path = Path("coral-output/serve.db")
    grace_seconds: float = 10.0
    body_limit_bytes: int = 33554432
    viewer_queue: int = 2
    max_viewers: int = 32
    ice_servers: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Any, **given: Any) -> ServeSettings:
        """Settings from ``services.serve`` (and ``services.webrtc``), CLI values winning."""
        section = _section(config)
        token = given.pop("token", None) or section.get("token")
        return cls(
            token=token,
            state_path=Path(section.get("state_path") or cls.state_path).absolute(),
            grace_seconds=float(section.get("grace_seconds", cls.grace_seconds)),
            body_limit_bytes=int(section.get("body_limit_bytes", cls.body_limit_bytes)),
            viewer_queue=int(section.get("viewer_queue", cls.viewer_queue)),
            max_viewers=int(section.get("max_viewers", cls.max_viewers)),
            ice_servers=tuple(config.get("services.webrtc.ice_servers") or ()),
            **given,
        )

    def check_exposure(self) -> None:
        """Refuse a non-loopback address without a token or an explicit ``--no-auth``."""
        if self.token and self.no_auth:
            raise ServeError("give either --token or --no-auth, not both")
        if is_loopback(self.host) or self.token or self.no_auth:
            return
        raise ServeError(
            f"refusing to serve on {self.host} without authentication: give --token TOKEN "
            "(or services.serve.token / CORAL_SERVICES__SERVE__TOKEN), or --no-auth to "
            "serve it open"
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _section(config: Any) -> dict[str, Any]:
    try:
        return dict(config.section(SECTION_PATH))
    except (KeyError, AttributeError):
        return {}
