"""The layering of ``coral_inference``: ``runtime/`` may use ``models/``, never the reverse.

The runtime hosts the models layer (its context owns a ``DecoderRegistry``, its plugin manager
fills it, its backend protocol names ``ModelPackage``); models are handed what they need
(``decoders=``, a ``current`` getter) and import nothing from the runtime, so neither package
can be imported half-initialised through the other. Imports at module level and inside
functions both count; ``if TYPE_CHECKING:`` blocks do not (annotations only).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.core

PACKAGE = Path(__file__).resolve().parents[2] / "coral_inference"
#: (importer layer, imported layer) pairs that must not exist.
FORBIDDEN = {("models", "runtime")}


@dataclass(frozen=True)
class Edge:
    """One import statement from a module of ``coral_inference`` to another."""

    source: str
    target: str
    file: Path
    line: int
    text: str

    def layers(self) -> tuple[str | None, str | None]:
        return _layer(self.source), _layer(self.target)

    def __str__(self) -> str:
        return f"{self.file.relative_to(PACKAGE.parent)}:{self.line}: {self.text}"


def _layer(module: str) -> str | None:
    """``runtime`` / ``models`` / ... for ``coral_inference.<layer>[.x]``; None for the root."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, outside ``if TYPE_CHECKING:`` bodies."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:  # the else branch runs
                visit(child)
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    """The modules ``node`` imports (``from a import b`` counts as ``a.b`` when that is one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        prefix = ".".join(base + ([node.module] if node.module else []))
    else:
        prefix = node.module or ""
    out = [prefix]
    for alias in node.names:
        candidate = f"{prefix}.{alias.name}"
        path = PACKAGE.parent.joinpath(*candidate.split("."))
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            out.append(candidate)
    return out


def import_graph() -> list[Edge]:
    """Every import edge between modules of ``coral_inference``."""
    edges = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in _imports(ast.parse(source, str(path))):
            for target in _targets(node, module, path.name == "__init__.py"):
                if target.startswith("coral_inference.") and target != module:
                    text = lines[node.lineno - 1].strip()
                    edges.append(Edge(module, target, path, node.lineno, text))
    return edges


def test_the_graph_sees_function_level_imports_and_skips_type_checking_blocks():
    edges = import_graph()
    plugins = [e for e in edges if e.source == "coral_inference.runtime.plugins"]
    # function-level: PluginManager.register_decoders imports DecoderClash where it is used
    assert any(e.target == "coral_inference.models.decoders" for e in plugins)
    # TYPE_CHECKING only: hookspecs names Decoder in annotations
    hookspecs = [e for e in edges if e.source == "coral_inference.runtime.hookspecs"]
    assert not any(e.target.startswith("coral_inference.models") for e in hookspecs)


def test_models_do_not_import_the_runtime():
    edges = import_graph()
    offending = [e for e in edges if e.layers() in FORBIDDEN]
    assert not offending, (
        "models/ must not import runtime/ (runtime/ imports models/, and the two layers "
        "must not form a cycle). Pass what the model code needs in (decoders=, a current() "
        "getter) or import it under `if TYPE_CHECKING:`; offending imports:\n"
        + "\n".join(f"  {edge}" for edge in offending)
    )
