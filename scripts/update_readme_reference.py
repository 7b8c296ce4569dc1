"""Rewrite the README's configuration reference from the schema (the test suite checks it)."""

from __future__ import annotations

import re
from pathlib import Path

from coral_inference.runtime.config import reference_rows

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def table() -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, kind, default, meaning in reference_rows():
        shown = f"`{default}`" if default else ""
        lines.append(f"| `{key}` | {kind} | {shown} | {meaning} |")
    return "\n".join(lines)


def main() -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    README.write_text(pattern.sub(f"{START}\n{table()}\n{END}", text), encoding="utf-8")


if __name__ == "__main__":
    main()
