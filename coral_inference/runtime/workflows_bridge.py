"""Hand workflow blocks registered by plugins to ``inference``'s workflows loader.

``inference`` imports every module named in the ``WORKFLOWS_PLUGINS`` environment variable
(comma-separated) and calls its ``load_blocks()``. This module is such a plugin module: ``install``
adds it to the variable and remembers the blocks; ``uninstall`` restores the variable.
"""

from __future__ import annotations

import os
import threading

ENV_VAR = "WORKFLOWS_PLUGINS"
_lock = threading.Lock()
_blocks: list[type] = []
_previous: list[str | None] = []


def load_blocks() -> list[type]:
    """Called by ``inference``'s blocks loader: the blocks the runtime collected."""
    with _lock:
        return list(_blocks)


def install(blocks: list[type]) -> None:
    """Make ``blocks`` visible to ``inference`` (replacing any earlier set)."""
    with _lock:
        _blocks[:] = blocks
        current = os.environ.get(ENV_VAR)
        names = [n.strip() for n in (current or "").split(",") if n.strip()]
        if not blocks or __name__ in names:
            return
        _previous.append(current)
        os.environ[ENV_VAR] = ",".join([*names, __name__])


def uninstall() -> None:
    """Forget the blocks and restore ``WORKFLOWS_PLUGINS`` as it was before ``install``."""
    with _lock:
        _blocks.clear()
        if not _previous:
            return
        previous = _previous.pop()
        _previous.clear()
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous
