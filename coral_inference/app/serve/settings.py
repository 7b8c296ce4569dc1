"""The settings of ``coral serve``: the flags, and the ``services.serve`` section (declared in
:mod:`coral_inference.runtime.schema`), including where the token comes from."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SECTION_PATH = "services.serve"
#: Shortest token accepted: 16 characters (a generated one has 32).
MIN_TOKEN_LENGTH = 16
#: The generated token's file, beside the state database.
TOKEN_FILE_NAME = "serve-token"


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
    """Everything the server needs besides the runtime config (defaults: the schema's)."""

    host: str = "127.0.0.1"
    port: int = 9001
    token: str | None = None
    #: Where the token came from, for the start-up line (never the token itself).
    token_origin: str = ""
    token_file: Path | None = None
    no_auth: bool = False
    restore: bool = True
    state_path: Path = Path("coral-output/serve.db")
    grace_seconds: float = 10.0
    body_limit_bytes: int = 65536
    image_body_limit_bytes: int = 16777216
    sdp_limit_bytes: int = 32768
    viewer_queue: int = 2
    max_viewers: int = 16
    max_viewers_per_pipeline: int = 4
    viewer_connect_seconds: float = 30.0
    max_pipelines: int = 8
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    allow_code_execution: bool = False
    media_dirs: tuple[Path, ...] = ()
    model_dirs: tuple[Path, ...] = ()
    ice_servers: tuple[str, ...] = field(default=())

    @classmethod
    def from_config(cls, config: Any, **given: Any) -> ServeSettings:
        """Settings from ``services.serve`` (and ``services.webrtc``), CLI values winning."""
        section = _section(config)
        token_file = given.pop("token_file", None) or section.get("token_file")

        def value(key: str, kind: Any) -> Any:
            return kind(section.get(key, getattr(cls, key)))

        def folders(key: str) -> tuple[Path, ...]:
            return tuple(Path(p).expanduser().resolve() for p in section.get(key) or ())

        token = given.pop("token", None)
        origin = "--token" if token else ""
        if not token and section.get("token"):
            token, origin = section["token"], "services.serve.token"
        return cls(
            token=token,
            token_origin=origin,
            token_file=Path(token_file).expanduser().absolute() if token_file else None,
            state_path=Path(section.get("state_path") or cls.state_path).absolute(),
            grace_seconds=value("grace_seconds", float),
            body_limit_bytes=value("body_limit_bytes", int),
            image_body_limit_bytes=value("image_body_limit_bytes", int),
            sdp_limit_bytes=value("sdp_limit_bytes", int),
            viewer_queue=value("viewer_queue", int),
            max_viewers=value("max_viewers", int),
            max_viewers_per_pipeline=value("max_viewers_per_pipeline", int),
            viewer_connect_seconds=value("viewer_connect_seconds", float),
            max_pipelines=value("max_pipelines", int),
            allowed_origins=tuple(section.get("allowed_origins") or ()),
            allowed_hosts=tuple(section.get("allowed_hosts") or ()),
            allow_code_execution=bool(section.get("allow_code_execution", False)),
            media_dirs=folders("media_dirs"),
            model_dirs=folders("model_dirs"),
            ice_servers=tuple(config.get("services.webrtc.ice_servers") or ()),
            **given,
        )

    def with_token(self) -> ServeSettings:
        """These settings with the token settled: given, read from ``token_file``, or (on a
        non-loopback address without ``--no-auth``) the one generated and saved beside the state
        database. ServeError for a token shorter than :data:`MIN_TOKEN_LENGTH` or an unreadable
        file, and for ``--no-auth`` with a token."""
        settings = self
        if not settings.token and settings.token_file is not None:
            settings = replace(
                settings,
                token=read_token_file(settings.token_file),
                token_origin=f"file {settings.token_file}",
            )
        if settings.token and settings.no_auth:
            raise ServeError("give either a token (--token, --token-file) or --no-auth, not both")
        if not settings.token and not settings.no_auth and not is_loopback(settings.host):
            path = settings.state_path.parent / TOKEN_FILE_NAME
            token, made = generated_token(path)
            origin = f"generated, saved in {path}" if made else f"file {path}"
            settings = replace(settings, token=token, token_origin=origin, token_file=path)
        if settings.token is not None and len(settings.token) < MIN_TOKEN_LENGTH:
            raise ServeError(
                f"the token ({settings.token_origin}) has {len(settings.token)} characters: "
                f"give at least {MIN_TOKEN_LENGTH} (e.g. python3 -c 'import secrets; "
                "print(secrets.token_urlsafe(24))')"
            )
        return settings


def read_token_file(path: Path) -> str:
    """The first line of ``path``; ServeError naming the file when it cannot be read or is
    empty, a warning when others may read it."""
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ServeError(f"cannot read the token file {path}: {reason}") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not token:
        raise ServeError(f"the token file {path} is empty")
    if mode & 0o077:
        log.warning("the token file %s can be read by other users: chmod 600 it", path)
    return token


def generated_token(path: Path) -> tuple[str, bool]:
    """The token saved in ``path``, or a new random one saved there (mode 0600);
    ``(token, newly made)``."""
    if path.is_file():
        return read_token_file(path), False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(24)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise ServeError(f"cannot save a generated token in {path}: {error.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(token + "\n")
    return token, True


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
