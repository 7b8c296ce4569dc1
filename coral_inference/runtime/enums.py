"""The base of the runtime's status enums."""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    """An enum whose members are their text: they compare, format and serialise as it."""

    def __str__(self) -> str:
        return str(self.value)
