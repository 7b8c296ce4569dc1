"""The error raised for every problem with a model package or its manifest."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

__all__ = ["ManifestProblems", "ModelPackageError"]


class ModelPackageError(Exception):
    """A model package (or its ``model.json``) is missing, malformed or inconsistent.

    Attributes:
        path: The file the problem is in (``model.json``, an archive, a weights file), if known.
        field: The manifest key path the problem is at, e.g. ``input.size``, if any.
        message: What is wrong and what to do about it.

    ``str()`` renders ``<path>: <field>: <message>``, leaving out the parts that are unknown, e.g.
    ``model.json: input.size: expected two positive integers [width, height], got 'abc'``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | PathLike[str] | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = Path(path) if path is not None else None
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [str(self.path)] if self.path is not None else []
        if self.field:
            parts.append(self.field)
        parts.append(self.message)
        return ": ".join(parts)

    def __reduce__(self):  # keep the keyword-only attributes when pickled across processes
        return (_rebuild, (self.message, self.path, self.field))


def _rebuild(message: str, path: Path | None, field: str | None) -> ModelPackageError:
    return ModelPackageError(message, path=path, field=field)


class ManifestProblems(ModelPackageError):
    """Several problems found in one manifest, reported together (one line each)."""

    def __init__(self, problems: list[ModelPackageError]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(f"{len(self.problems)} problems", path=first.path, field=None)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)

    def __reduce__(self):
        return (ManifestProblems, (self.problems,))
