"""Checks that the places a job writes to are writable, before any model is loaded."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class NotWritable(Exception):
    """``path`` (the ``what``) cannot be written; the message names both and the reason."""

    def __init__(self, what: str, path: Path, reason: str) -> None:
        super().__init__(f"cannot write the {what} {path}: {reason}")
        self.path = path


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def check_directory(path: Path, what: str) -> None:
    """Create ``path`` if needed and prove a file can be created in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".coral-write-check-"):
            pass
    except FileExistsError:
        raise NotWritable(what, path, "a file is in the way (expected a directory)") from None
    except OSError as exc:
        raise NotWritable(what, path, _reason(exc)) from None


def check_file(path: Path, what: str) -> None:
    """Prove ``path`` can be opened for writing (its directory is created, content kept)."""
    if path.is_dir():
        raise NotWritable(what, path, "it is a directory")
    check_directory(path.parent, f"{what}'s directory")
    try:
        existed = path.exists()
        with path.open("ab"):
            pass
        if not existed:
            os.unlink(path)
    except OSError as exc:
        raise NotWritable(what, path, _reason(exc)) from None
