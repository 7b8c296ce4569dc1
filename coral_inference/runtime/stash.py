"""A typed store on the runtime context for plugins' own state (after pytest's ``Stash``).

A service plugin that starts a thread in ``runtime_started`` keeps it here until
``runtime_stopping``, instead of setting attributes on the context::

    WRITER = StashKey[StatusWriter]()

    context.stash[WRITER] = StatusWriter(...)   # runtime_started
    writer = context.stash.pop(WRITER, None)     # runtime_stopping

Each key is its own object, so two plugins cannot clash, and a type checker knows the value's
type from the key.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
D = TypeVar("D")


class StashKey(Generic[T]):
    """The key of one value of type ``T``: create one per value, at module level."""

    __slots__ = ()


class Stash:
    """Values by :class:`StashKey`; owned by one runtime context, gone with it."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values: dict[StashKey[Any], object] = {}

    def __setitem__(self, key: StashKey[T], value: T) -> None:
        self._values[key] = value

    def __getitem__(self, key: StashKey[T]) -> T:
        return cast(T, self._values[key])

    def get(self, key: StashKey[T], default: D) -> T | D:
        """The value under ``key``, or ``default`` when there is none."""
        return cast(T, self._values[key]) if key in self._values else default

    def pop(self, key: StashKey[T], default: D) -> T | D:
        """Remove the value under ``key`` and return it, or ``default`` when there is none."""
        return cast("T | D", self._values.pop(key, default))

    def __delitem__(self, key: StashKey[T]) -> None:
        del self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)
