"""``coral plugins new NAME --kind KIND``: write a ready-to-install plugin project.

Every skeleton has a ``pyproject.toml`` with its entry point, a light plugin module of
documented ``@hookimpl`` functions, the module doing the work (imported only from inside the
hooks), a README, and a test using the ``coral_inference.testing`` fixtures that passes as
generated. The templates live in :mod:`coral_inference.app.scaffold_templates`.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

from coral_inference.app import scaffold_templates as templates
from coral_inference.patches import TESTED_INFERENCE

KINDS = ("backend", "patch", "workflow", "service")
#: Entry-point group (short name) of each kind; a service hooks the life cycle from ``patches``
#: (the original guide's group for sinks and other runtime extensions).
GROUP_OF_KIND = {"backend": "backends", "patch": "patches", "workflow": "workflows"}
GROUP_OF_KIND["service"] = "patches"
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")


class ScaffoldError(ValueError):
    """The name, kind or target directory is unusable; the message says what to do."""


@dataclass(frozen=True)
class Skeleton:
    """What was written: the project directory and its files (relative paths)."""

    root: Path
    files: list[str]
    package: str
    plugin: str


def _names(name: str) -> dict[str, str]:
    if not _NAME.fullmatch(name):
        raise ScaffoldError(
            f"plugin name {name!r}: use lower-case letters and digits, words joined by - or _ "
            "(e.g. shelf-counter)"
        )
    package = name.replace("-", "_")
    if not package.startswith("coral_"):
        package = f"coral_{package}"
    plugin = package.removeprefix("coral_")
    return {
        "dist": package.replace("_", "-"),
        "package": package,
        "plugin": plugin,
        "title": plugin.replace("_", " ").capitalize(),
        "class_name": "".join(part.capitalize() for part in plugin.split("_")),
        "inference_range": TESTED_INFERENCE,  # the skeletons are tested on the same lines
    }


def create(name: str, kind: str, directory: str | Path = ".") -> Skeleton:
    """Write the skeleton of a ``kind`` plugin called ``name`` under ``directory/<dist>``."""
    if kind not in KINDS:
        raise ScaffoldError(f"--kind {kind!r}: use one of {', '.join(KINDS)}")
    values = _names(name)
    values["group"] = GROUP_OF_KIND[kind]
    root = Path(directory) / values["dist"]
    if root.exists() and any(root.iterdir()):
        raise ScaffoldError(f"{root} already exists and is not empty; pick another --dir or name")
    files = {
        "pyproject.toml": templates.PYPROJECT[kind],
        "README.md": templates.README[kind],
        f"src/{values['package']}/__init__.py": templates.INIT,
        f"src/{values['package']}/plugin.py": templates.PLUGIN[kind],
        f"src/{values['package']}/{templates.WORKER_MODULE[kind]}.py": templates.WORKER[kind],
        f"tests/test_{values['plugin']}.py": templates.TEST[kind],
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(string.Template(template).substitute(values), encoding="utf-8")
    return Skeleton(root, sorted(files), values["package"], values["plugin"])
