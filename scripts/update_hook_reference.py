"""Rewrite the hook reference in docs/plugins.md from the hookspec docstrings (the test suite
checks it)."""

from __future__ import annotations

from pathlib import Path

from coral_inference.runtime.hook_reference import update

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def main() -> None:
    print(f"{GUIDE}: {'updated' if update(GUIDE) else 'up to date'}")


if __name__ == "__main__":
    main()
