"""The runtime context's typed stash: plugins' own state, by key object."""

from __future__ import annotations

import pytest

from coral_inference.runtime.stash import Stash, StashKey

pytestmark = pytest.mark.core


def test_values_are_kept_by_key_object_not_by_name() -> None:
    stash = Stash()
    first, second = StashKey[int](), StashKey[int]()
    stash[first] = 1
    stash[second] = 2
    assert (stash[first], stash[second], len(stash)) == (1, 2, 2)
    assert first in stash and StashKey[int]() not in stash


def test_get_pop_and_delete() -> None:
    stash = Stash()
    key = StashKey[str]()
    assert stash.get(key, None) is None and stash.pop(key, "none") == "none"
    stash[key] = "writer"
    assert stash.get(key, None) == "writer"
    assert stash.pop(key, None) == "writer" and key not in stash
    stash[key] = "again"
    del stash[key]
    with pytest.raises(KeyError):
        stash[key]
