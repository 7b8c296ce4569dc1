"""The hook reference, rendered from the hookspec docstrings (``docs/plugins.md`` embeds it).

``python scripts/update_hook_reference.py`` rewrites the block between the markers; the test
suite fails when the file and :func:`render` disagree.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coral_inference.runtime import hookspecs

START, END = "<!-- hook-reference:start -->", "<!-- hook-reference:end -->"
_BLOCK = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
_ROLE = re.compile(r":\w+:`(~?)([^`]+)`")


def _markdown(doc: str) -> str:
    """Sphinx roles and double backticks as Markdown code spans."""

    def role(match: re.Match[str]) -> str:
        target = match.group(2)
        return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"

    return _ROLE.sub(role, doc).replace("``", "`")


def hook_functions() -> list[tuple[str, Callable[..., Any]]]:
    """Every hookspec, in the order :mod:`~coral_inference.runtime.hookspecs` defines them."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return [(name, f) for name, f in vars(hookspecs).items() if hasattr(f, marker)]


def render() -> str:
    """Markdown: one heading per hook with its signature, then its docstring."""
    parts = []
    for name, function in hook_functions():
        signature = str(inspect.signature(function)).replace("'", "")
        doc = _markdown(inspect.cleandoc(function.__doc__ or "(undocumented)"))
        parts.append(f"#### `{name}{signature}`\n\n{doc}\n")
    return "\n".join(parts).rstrip() + "\n"


def embedded(text: str) -> str | None:
    """The reference currently between the markers of ``text`` (None without markers)."""
    match = _BLOCK.search(text)
    return None if match is None else match.group(0)[len(START) : -len(END)].strip("\n") + "\n"


def update(path: Path) -> bool:
    """Rewrite the block in ``path``; return whether it changed."""
    text = path.read_text(encoding="utf-8")
    if _BLOCK.search(text) is None:
        raise ValueError(f"{path}: no {START} ... {END} block")
    new = _BLOCK.sub(lambda _: f"{START}\n{render()}{END}", text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text
