"""Typed options: the one way a configurable part declares its keys.

An :class:`Option` is one leaf key (type, default, help, constraints); a :class:`Section` groups
keys. The core's schema (:mod:`coral_inference.runtime.schema`) and every plugin's declared
section (the ``declare_options`` hook) use these, and the same declaration drives validation,
defaults, env/``--set`` parsing, ``coral config init|show`` and the README reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Option:
    """One leaf key. ``kind`` is one of: str, bool, int, float, list[str], mapping, path."""

    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    nullable: bool = False
    minimum: float | None = None


@dataclass(frozen=True)
class Section:
    """A mapping of named keys. ``values`` set: an open map whose every value is that option."""

    help: str
    keys: dict[str, Section | Option] = field(default_factory=dict)
    values: Option | None = None
