"""``assert_patch_reverts``: apply a patch, check it changed its targets, revert it, check every
original is back (identity-equal, ``is``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

_MISSING = object()


def _owner_and_attribute(path: str) -> tuple[Any, str]:
    from coral_inference.runtime.compat import import_object

    module_name, _, attr_path = path.partition(":")
    if not attr_path:
        raise ValueError(f"target {path!r}: name an attribute, 'module:Owner.attr'")
    owner_path, _, attribute = attr_path.rpartition(".")
    owner = import_object(f"{module_name}:{owner_path}" if owner_path else module_name)
    return owner, attribute


def _snapshot(paths: list[str]) -> dict[str, tuple[Any, str, Any]]:
    """path -> (owner, attribute, the owner's own value or _MISSING)."""
    out = {}
    for path in paths:
        owner, attribute = _owner_and_attribute(path)
        out[path] = (owner, attribute, vars(owner).get(attribute, _MISSING))
    return out


def assert_patch_reverts(
    patch: Any,
    config: Mapping[str, Any] | None = None,
    *,
    targets: list[str] | None = None,
) -> Any:
    """Apply ``patch`` (a :class:`~coral_inference.runtime.patching.Patch`) with ``config``,
    assert it is applied and changed at least one of its targets, revert it, and assert every
    target holds exactly its original object again. Returns the ``PatchRecord`` as applied.

    ``targets`` defaults to the patch's declared targets that name an attribute
    (``"module:Owner.attr"``); pass the paths your ``install`` really changes if they differ.
    """
    from coral_inference.runtime import compat, patching
    from coral_inference.runtime.config import load_config

    paths = list(targets if targets is not None else [t for t in patch.targets if ":" in t])
    if not paths:
        raise AssertionError(
            f"patch {patch.name!r} declares no 'module:attr' targets; pass targets=[...]"
        )
    before = _snapshot(paths)
    descriptor = load_config(data=dict(config or {}), env={})
    context = patching.PatchContext(descriptor, compat.installed_inference(), "cpu")
    record = context.apply(patch)
    assert record.status == patching.APPLIED, (
        f"patch {patch.name!r} {record.status}: {record.reason}"
    )
    applied = dataclasses.replace(record, revert=None)  # revert() marks the record reverted
    try:
        changed = [p for p, (o, a, v) in before.items() if vars(o).get(a, _MISSING) is not v]
        assert changed, f"patch {patch.name!r} changed none of {paths}"
    finally:
        patching.revert(patch.name)
    for path, (owner, attribute, original) in before.items():
        now = vars(owner).get(attribute, _MISSING)
        assert now is original, (
            f"after reverting {patch.name!r}, {path} is {now!r}, not the original {original!r}"
        )
    return applied
