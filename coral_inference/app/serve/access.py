"""What a ``POST /coral/pipelines`` may name as its source and model.

A request comes from the network, so neither may reach beyond what the owner opened up:

* sources: ``rtsp``/``rtsps``/``http``/``https`` streams, camera indexes and ``/dev/video*``
  devices (``/dev/v4l/by-*/...`` links to them too), and video files inside
  ``services.serve.media_dirs`` (none by default). Every other scheme (``file``, ``gopher``,
  ``tcp``, ``ftp``, ...) is refused before FFmpeg sees it, and FFmpeg's own protocol whitelist
  (:func:`~coral_inference.app.serve.hardening.harden_environment`) refuses them again;
* models: the configured ``models.<id>``, or packages inside ``services.serve.model_dirs``.

A refused path gets the same answer whether or not it exists, so the API does not tell which
files the host has.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from coral_inference.app.serve.credentials import mask_credentials
from coral_inference.app.serve.settings import ServeError

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
_DEVICE = re.compile(r"^/dev/video[0-9]+$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
#: ``name:`` at the start: what FFmpeg takes for a protocol (``concat:``, ``file:``, ...).
_PROTOCOL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class AccessError(ServeError):
    """A source or model this server does not open to requests."""


def _inside(path: Path, folders: tuple[Path, ...]) -> bool:
    resolved = path.expanduser().resolve()
    return any(resolved.is_relative_to(folder) for folder in folders)


def _listing(folders: tuple[Path, ...], key: str) -> str:
    if folders:
        return ", ".join(str(f) for f in folders)
    return f"none configured: --set 'services.serve.{key}=[DIR]' or the config file"


def allowed_source(source: str, media_dirs: tuple[Path, ...]) -> str:
    """``source`` as it may be opened: a stream URL of an allowed scheme, a camera, or a file
    inside ``media_dirs`` (returned as its resolved absolute path, which FFmpeg cannot take for
    a protocol such as ``concat:``); :class:`AccessError` for anything else."""
    shown = mask_credentials(source)
    if source.isdigit():
        return source
    if _PROTOCOL.match(source):
        scheme = source.split(":", 1)[0].lower()
        if scheme not in STREAM_SCHEMES or "://" not in source or _CONTROL.search(source):
            raise AccessError(
                f"source {shown!r} is not allowed: streams must be "
                f"{', '.join(s + '://' for s in STREAM_SCHEMES)} URLs"
            )
        if not urlsplit(source).hostname:
            raise AccessError(f"source {shown!r} is not allowed: the URL has no host")
        return source
    if source.startswith("/dev/"):
        device = str(Path(source).resolve())
        if _DEVICE.match(device):
            return device
        raise AccessError(f"source {shown!r} is not allowed: cameras are /dev/videoN devices")
    if not _inside(Path(source), media_dirs):
        raise AccessError(
            f"source {shown!r} is not allowed: video files must be inside "
            f"services.serve.media_dirs ({_listing(media_dirs, 'media_dirs')})"
        )
    return str(Path(source).expanduser().resolve())


def check_model_path_allowed(reference: str, model_dirs: tuple[Path, ...]) -> None:
    """Raise :class:`AccessError` unless ``reference`` (not a configured model id) is a path
    inside ``model_dirs``."""
    if not _inside(Path(reference), model_dirs):
        raise AccessError(
            f"model {reference!r} is not allowed: give a configured model id (models.<id>) or "
            f"a package inside services.serve.model_dirs ({_listing(model_dirs, 'model_dirs')})"
        )
