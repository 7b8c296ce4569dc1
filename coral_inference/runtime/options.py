"""Typed options: the one way a configurable part declares its keys.

An :class:`Option` is one leaf key (type, default, help, constraints); a :class:`Section` groups
keys. The core's schema (:mod:`coral_inference.runtime.schema`) and every plugin's declared
section (the ``declare_options`` hook) use these, and the same declaration drives validation,
defaults, env/``--set`` parsing, ``coral config init|show`` and the README reference::

    RKNN = Section("RKNN backend", {
        "core_mask": Option("str", "auto", "NPU cores to run on", choices=("auto", "0", "0_1_2")),
        "pool_size": Option("int", None, "contexts in the pool", nullable=True, minimum=1),
    })
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: The value kinds an :class:`Option` can have. ``any`` accepts every value unchecked: it is
#: what a section owned by a plugin that did not load (and so declared nothing) falls back to.
KINDS = ("str", "bool", "int", "float", "list[str]", "mapping", "path", "any")

#: A cross-field rule of a section: given the section's merged values, return
#: ``(key, message)`` for every problem (``key`` names the option the message is about).
Check = Callable[[Mapping[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class Option:
    """One leaf key.

    Attributes:
        kind: One of :data:`KINDS`.
        default: The value when nothing sets it.
        help: One line for the template, ``config show`` and the README.
        choices: The only values allowed (empty: any).
        nullable: ``null`` allowed.
        minimum: Smallest number allowed (``int`` / ``float``).
        maximum: Largest number allowed (``int`` / ``float``).
    """

    kind: str
    default: Any
    help: str
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Option kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class Section:
    """A mapping of named keys.

    Attributes:
        help: What the section configures.
        keys: Its options and sub-sections.
        values: Set for an open map: every key not in ``keys`` is this option or section.
        switch: The section may also be given as a bare ``true`` / ``false``, short for
            ``{enabled: ...}`` (``patches.<name>``); it then has an ``enabled`` key.
        checks: Cross-field rules run on the merged values (e.g. InfluxDB needs ``url``).
    """

    help: str
    keys: dict[str, Node] = field(default_factory=dict)
    values: Node | None = None
    switch: bool = False
    checks: tuple[Check, ...] = ()

    def child(self, key: str) -> Node | None:
        return self.keys.get(key) or self.values


Node = Section | Option


def walk(section: Section, prefix: str = "") -> Iterator[tuple[str, Node]]:
    """Yield (dotted path, node) for every declared key below ``section``, depth first."""
    for key, node in section.keys.items():
        path = f"{prefix}{key}"
        yield path, node
        if isinstance(node, Section):
            yield from walk(node, f"{path}.")


def defaults(section: Section) -> dict[str, Any]:
    """The nested default values of every declared key below ``section``."""
    out: dict[str, Any] = {}
    for key, node in section.keys.items():
        out[key] = defaults(node) if isinstance(node, Section) else _copy(node.default)
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value
