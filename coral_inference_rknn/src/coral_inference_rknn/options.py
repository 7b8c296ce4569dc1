"""``backends.options.rknn``: the typed options of the RKNN backend and what they resolve to.

:data:`OPTIONS` is declared to the host through the ``declare_options`` hook, which validates
and fills in defaults; :func:`resolve` checks the mapping again (``create_session`` may be called
directly) and turns it into the core mask of every context in the pool for the board's SoC.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coral_inference.runtime.backends import BackendError
from coral_inference.runtime.config import check_section
from coral_inference.runtime.options import Option, Section

from .soc import npu_cores

#: ``rknnlite.api.RKNNLite.NPU_CORE_*`` values, by option spelling.
CORE_MASKS = {"auto": 0, "0": 1, "1": 2, "2": 4, "0_1": 3, "0_1_2": 7}
#: The RKNNLite constant each mask value stands for (error messages name them).
CORE_MASK_NAMES = {
    0: "NPU_CORE_AUTO",
    1: "NPU_CORE_0",
    2: "NPU_CORE_1",
    4: "NPU_CORE_2",
    3: "NPU_CORE_0_1",
    7: "NPU_CORE_0_1_2",
}

OPTIONS_PATH = "backends.options.rknn"
OPTIONS = Section(
    "RKNN backend (Rockchip NPUs)",
    {
        "core_mask": Option(
            "str",
            "auto",
            "NPU cores each context runs on (quote it in YAML: '0_1'); auto pins a pool's "
            "contexts one per core",
            choices=tuple(CORE_MASKS),
        ),
        "pool_size": Option(
            "int",
            0,
            "NPU contexts per model; 0: one per NPU core (3 on RK3588, 2 on RK3576, else 1)",
            minimum=0,
        ),
        "pipeline": Option(
            "bool",
            True,
            "keep up to pool_size frames of one stream in flight (results stay in frame order)",
        ),
    },
)


@dataclass(frozen=True)
class RknnSettings:
    """Resolved options: one core mask per context, and whether one stream is pipelined."""

    core_masks: tuple[int, ...]
    pipeline: bool

    @property
    def pool_size(self) -> int:
        return len(self.core_masks)


def resolve(options: Mapping[str, Any], soc: str) -> RknnSettings:
    """Check ``backends.options.rknn`` against :data:`OPTIONS` and plan the pool for ``soc``.

    ``core_mask`` must be a string: YAML reads an unquoted ``0_1`` as the integer 1, which would
    silently mean another core, so a number is refused (by the declared type) rather than guessed.
    """
    merged = check_section(OPTIONS_PATH, OPTIONS, options)
    mask = merged["core_mask"]
    cores = npu_cores(soc)
    wanted = max(CORE_MASKS[mask].bit_length(), 1)
    if wanted > cores:
        raise BackendError(
            f"{OPTIONS_PATH}.core_mask: {mask} names NPU core {wanted - 1} but {soc} has "
            f"{cores} core(s); use auto or a core below {cores}"
        )
    size = merged["pool_size"] or cores
    if mask == "auto" and cores > 1:
        masks = tuple(1 << (i % cores) for i in range(size))
    else:
        masks = (CORE_MASKS[mask],) * size
    return RknnSettings(core_masks=masks, pipeline=merged["pipeline"])
