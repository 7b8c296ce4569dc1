"""The latency percentiles every summary reports (``coral run``, ``coral serve``'s relay)."""

from __future__ import annotations

from collections.abc import Iterable

#: The reported percentiles, by key.
QUANTILES = {"p50": 0.5, "p95": 0.95}


def percentiles(values: Iterable[float]) -> dict[str, float | None]:
    """``{"p50": ..., "p95": ...}`` of ``values`` (nearest rank, rounded to 0.01; None when
    there are none)."""
    ordered = sorted(values)
    if not ordered:
        return dict.fromkeys(QUANTILES)
    last = len(ordered) - 1
    return {
        key: round(ordered[min(last, int(q * len(ordered)))], 2) for key, q in QUANTILES.items()
    }
