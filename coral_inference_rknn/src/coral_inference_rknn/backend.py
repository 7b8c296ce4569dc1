"""The ``rknn`` backend adapter: ``.rknn`` weights on the board's NPU through a context pool."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coral_inference.runtime.backends import (
    RANK_ACCELERATOR,
    Availability,
    BackendError,
    BackendRank,
)

from .board import Board, board_report, probe_board
from .options import resolve
from .session import RknnPool, RuntimeFactory, rknnlite_factory
from .soc import runs_on

if TYPE_CHECKING:
    from coral_inference.models.package import ModelPackage

log = logging.getLogger(__name__)

#: rknn-toolkit2 ends a ``.rknn`` with a JSON trailer naming the SoC it was built for.
_TARGET = re.compile(rb'"target_platform"\s*:\s*(\[[^\]]*\])')
_TRAILER_BYTES = 1 << 20


def rknn_file_target(path: Path) -> str | None:
    """The SoC named in the ``.rknn`` file's own metadata, or None if it names none."""
    try:
        with path.open("rb") as file:
            file.seek(0, 2)
            file.seek(max(0, file.tell() - _TRAILER_BYTES))
            tail = file.read()
    except OSError:
        return None
    match = _TARGET.search(tail)
    if match is None:
        return None
    try:
        targets = json.loads(match.group(1))
    except ValueError:
        return None
    return str(targets[0]).lower() if targets else None


class RknnBackend:
    """Loads ``.rknn`` model packages with ``rknnlite``.

    Args:
        name: The backend name (``rknn``).
        probe: Returns the :class:`Board` (injectable: tests hand in a fake board).
        runtime: Returns the ``RKNNLite`` factory; by default ``rknnlite`` imported lazily.
    """

    formats = ("rknn",)

    def __init__(
        self,
        name: str = "rknn",
        *,
        probe: Callable[[], Board] = probe_board,
        runtime: Callable[[], RuntimeFactory] = rknnlite_factory,
    ) -> None:
        self.name = name
        self._probe = probe
        self._runtime = runtime
        #: Open sessions (closed ones are dropped on the next create), released at shutdown even
        #: when their owner forgot them: an NPU context outlives its Python object otherwise.
        self._sessions: list[RknnPool] = []

    def availability(self) -> Availability:
        return self._probe().availability()

    def auto_rank(self) -> BackendRank:
        """Under ``backends.preferred: auto``: the board's NPU, an accelerator."""
        return BackendRank(RANK_ACCELERATOR, f"Rockchip NPU ({self._probe().soc or 'unknown SoC'})")

    def diagnostics(self) -> dict[str, str]:
        """The NPU section of ``coral doctor``."""
        return board_report(self._probe())

    def create_session(self, package: ModelPackage, options: Mapping[str, Any]) -> RknnPool:
        """A pool of NPU contexts on the package's ``.rknn`` weights, refused when they were
        built for another SoC (the file's own target first, then the manifest's)."""
        board = self._probe()
        status = board.availability()
        if not status.available:
            raise BackendError(f"backend {self.name!r} is not available here: {status.reason}")
        soc = board.soc or ""
        weights = package.weights_path("rknn")
        manifest = package.manifest
        target = rknn_file_target(weights) or (manifest.rknn.target if manifest.rknn else None)
        if target is None:
            log.warning(
                "%s: the manifest names no rknn.target; assuming it was built for %s", weights, soc
            )
        elif not runs_on(target, soc):
            raise BackendError(
                f"{weights}: built for {target} but this board is {soc}; convert the model for "
                f"{soc}: coral rknn convert PACKAGE OUT --target {board.base_soc}"
            )
        settings = resolve(options, soc)
        pool = RknnPool(
            self._runtime(),
            weights,
            soc,
            settings.core_masks,
            data_format=manifest.input.layout.lower(),
            pipeline=settings.pipeline,
        )
        self._sessions = [session for session in self._sessions if not session.closed]
        self._sessions.append(pool)
        return pool

    def close_sessions(self) -> int:
        """Release every context of every session still open (runtime shutdown); returns how
        many sessions were closed."""
        sessions, self._sessions = self._sessions, []
        open_ones = [pool for pool in sessions if not pool.closed]
        for pool in open_ones:
            pool.close()
        return len(open_ones)
