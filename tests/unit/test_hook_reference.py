"""docs/plugins.md embeds the hook reference rendered from the hookspec docstrings."""

from pathlib import Path

import pytest

from coral_inference.runtime import hookspecs
from coral_inference.runtime.hook_reference import embedded, hook_functions, render

pytestmark = pytest.mark.core

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def test_guide_reference_matches_the_hookspecs():
    assert embedded(GUIDE.read_text(encoding="utf-8")) == render(), (
        "docs/plugins.md is out of date: run python scripts/update_hook_reference.py"
    )


def test_every_hook_is_documented_in_the_reference():
    text = render()
    names = [name for name, _ in hook_functions()]
    assert "apply_patch" in names and "register_backend" in names
    for name in names:
        assert f"#### `{name}(" in text
        assert getattr(hookspecs, name).__doc__, f"hookspec {name} has no docstring"
    assert ":func:" not in text and "``" not in text
