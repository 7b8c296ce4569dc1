"""The files ``coral plugins new`` writes, as :class:`string.Template` texts.

Placeholders: ``$dist`` (distribution), ``$package`` (import name), ``$plugin`` (entry point and
config name), ``$group``, ``$title``, ``$class_name``, ``$inference_range``. ``$$`` is a ``$``.
Each kind's test is part of the contract: ``tests/unit/test_scaffold.py`` installs every
skeleton into a fresh virtual environment and runs it.
"""

from __future__ import annotations

#: The ``inference`` versions the skeletons are written and tested for.
INFERENCE_RANGE = ">=0.54,<1.9"

INIT = '''"""$title: a coral-inference plugin."""
'''

_BUILD = """[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"
"""

_TAIL = """
[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points."coral_inference.$group"]
# NAME = module with the @hookimpl functions; NAME is what `coral plugins list` shows and
# what plugins.disabled / CORAL_PLUGINS__DISABLED accept.
$plugin = "$package.plugin"

[tool.setuptools.packages.find]
where = ["src"]
"""


def _pyproject(description: str, dependencies: str) -> str:
    return (
        _BUILD
        + f"""
[project]
name = "$dist"
version = "0.1.0"
description = "{description}"
readme = "README.md"
requires-python = ">=3.10"
# Checked by coral-inference *before* it imports the plugin: outside these ranges the plugin
# is listed `incompatible` with the reason, never imported.
dependencies = [{dependencies}]
"""
        + _TAIL
    )


#: Kinds that run inside ``inference`` declare its range; any distribution of it (inference,
#: inference-cpu, inference-gpu) satisfies the runtime's gate. Name the one you deploy.
_WITH_INFERENCE = '"coral-inference>=0.1", "inference-cpu$inference_range"'
_CORE_ONLY = '"coral-inference>=0.1"'

PYPROJECT = {
    "backend": _pyproject("coral-inference backend: $title", _CORE_ONLY),
    "patch": _pyproject("coral-inference patch: $title", _WITH_INFERENCE),
    "workflow": _pyproject("coral-inference workflow block: $title", _WITH_INFERENCE),
    "service": _pyproject("coral-inference service: $title", _CORE_ONLY),
}

_README = """# $dist

{what}

```bash
pip install -e '.[test]'
coral plugins list          # `$plugin` must be listed `loaded`
pytest                      # the fixtures come with coral-inference (coral_inference.testing)
```

{config}

Layout: `src/$package/plugin.py` holds the `@hookimpl` functions the entry point names (keep
it light: `coral plugins list` imports it); `src/$package/{worker}.py` does the work and is
imported only inside the hooks.

Before publishing:
- [ ] `dependencies` in `pyproject.toml` state the coral-inference / inference ranges you tested.
- [ ] Every setting is declared in `declare_options` (typed, with a default and help text).
- [ ] `pytest` passes, and `coral init --strict` exits 0 with the plugin installed.
- [ ] This README shows a minimal config (YAML) that `coral config validate -c` accepts.
"""

README = {
    "backend": _README.format(
        what="A backend: runs model packages' `.onnx` weights (here through onnxruntime; put "
        "your chip's runtime in `backend.py`). Pre-processing, decoding and NMS are the core's.",
        config="```yaml\nbackends:\n  preferred: [$plugin]\n  options:\n    $plugin:\n"
        "      threads: 2\n```",
        worker="backend",
    ),
    "patch": _README.format(
        what="A patch: a declared, revertible change to `inference` ($inference_range), applied "
        "by `coral_inference.init()` and reverted by `shutdown()`.",
        config="```yaml\npatches:\n  $plugin:\n    every: 50     # log every 50th rendered frame\n"
        "```",
        worker="patch",
    ),
    "workflow": _README.format(
        what="A workflow block `coral/$plugin@v1` for `inference`'s workflows engine: outputs "
        "how many detections it was given.",
        config='```json\n{"type": "coral/$plugin@v1", "name": "count", '
        '"predictions": "$$steps.model.predictions"}\n```',
        worker="block",
    ),
    "service": _README.format(
        what="A service: started when the runtime is ready, stopped before it shuts down; it "
        "writes the runtime's state to a JSON file every few seconds.",
        config="```yaml\nservices:\n  $plugin:\n    path: ./coral-output/$plugin.json\n"
        "    interval_seconds: 5\n```",
        worker="service",
    ),
}

WORKER_MODULE = {
    "backend": "backend",
    "patch": "patch",
    "workflow": "block",
    "service": "service",
}

PLUGIN = {
    "backend": '''"""The module the `$plugin` entry point names: hook implementations only."""

from collections.abc import Callable

from coral_inference import hookimpl
from coral_inference.runtime.backends import BackendAdapter
from coral_inference.runtime.options import Section


@hookimpl
def register_backend(register: Callable[[BackendAdapter], None]) -> None:
    """Called at each ``coral_inference.init``: register the `$plugin` backend.

    The adapter's ``availability()`` must stay cheap and ``create_session`` does the import of
    the runtime, so listing plugins never loads it.
    """
    from $package.backend import ${class_name}Backend

    register(${class_name}Backend())


@hookimpl
def declare_options(declare: Callable[[str, Section], None]) -> None:
    """Declare ``backends.options.$plugin``: validated, defaulted, parsed from env/--set."""
    from $package.backend import OPTIONS, OPTIONS_PATH

    declare(OPTIONS_PATH, OPTIONS)
''',
    "patch": '''"""The module the `$plugin` entry point names: hook implementations only."""

from collections.abc import Callable

from coral_inference import hookimpl
from coral_inference.runtime.options import Section


@hookimpl
def apply_patch(context):
    """Called at each ``coral_inference.init`` (built-in patches first): apply the patch.

    ``context.apply`` skips it with the reason when ``patches.$plugin`` is off or ``inference``
    is outside the declared range, applies it once per process, reverts it at ``shutdown()``.
    """
    from $package.patch import ${class_name}Patch

    return context.apply(${class_name}Patch())


@hookimpl
def declare_options(declare: Callable[[str, Section], None]) -> None:
    """Declare the settings beside ``patches.$plugin.enabled``."""
    from $package.patch import OPTIONS

    declare("patches.$plugin", OPTIONS)
''',
    "workflow": '''"""The module the `$plugin` entry point names: hook implementations only.

The block module imports ``inference``'s workflows engine, so it is imported inside the hook.
"""

from collections.abc import Callable

from coral_inference import hookimpl


@hookimpl
def register_workflow_block(register: Callable[[type], None]) -> None:
    """Called at each ``coral_inference.init``: hand the block class to ``inference``'s
    workflows loader; it is withdrawn again at ``shutdown()``."""
    from $package.block import ${class_name}BlockV1

    register(${class_name}BlockV1)
''',
    "service": '''"""The module the `$plugin` entry point names: hook implementations only.

The running service belongs to the runtime context it was started for (no module state).
"""

from collections.abc import Callable

from coral_inference import hookimpl
from coral_inference.runtime.options import Section


@hookimpl
def runtime_started(context):
    """Called at the end of ``coral_inference.init`` with the ready context: start."""
    from $package.service import StatusWriter

    StatusWriter.start_for(context)


@hookimpl
def runtime_stopping(context):
    """Called at the start of ``coral_inference.shutdown``: stop and write a last time."""
    from $package.service import StatusWriter

    StatusWriter.stop_for(context)


@hookimpl
def declare_options(declare: Callable[[str, Section], None]) -> None:
    """Declare ``services.$plugin``."""
    from $package.service import OPTIONS

    declare("services.$plugin", OPTIONS)
''',
}

WORKER = {
    "backend": '''"""The `$plugin` backend: turns ``.onnx`` weights into a session.

Replace the onnxruntime calls with your chip's runtime. The core does the rest (letterbox,
normalisation, decoding, NMS) from the model package's manifest.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coral_inference.runtime.backends import Availability
from coral_inference.runtime.config import check_section
from coral_inference.runtime.options import Option, Section

if TYPE_CHECKING:
    from coral_inference.models.package import ModelPackage

#: The runtime this backend drives.
RUNTIME_MODULE = "onnxruntime"
OPTIONS_PATH = "backends.options.$plugin"
OPTIONS = Section(
    "the $plugin backend",
    {"threads": Option("int", 0, "intra-op threads (0: the runtime decides)", minimum=0)},
)


class ${class_name}Session:
    """A loaded model: ``run(tensor)`` returns every output, batch dimension first."""

    def __init__(self, weights: Path, threads: int) -> None:
        import onnxruntime

        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = threads
        self._session = onnxruntime.InferenceSession(
            str(weights), settings, providers=["CPUExecutionProvider"]
        )
        self.input_name = self._session.get_inputs()[0].name

    def run(self, tensor: Any) -> list[Any]:
        return list(self._session.run(None, {self.input_name: tensor}))

    def close(self) -> None:
        self._session = None


class ${class_name}Backend:
    """The adapter registered by ``register_backend``."""

    name = "$plugin"
    formats = ("onnx",)

    def availability(self) -> Availability:
        if importlib.util.find_spec(RUNTIME_MODULE) is None:
            return Availability(False, f"{RUNTIME_MODULE} is not installed")
        return Availability(True, f"{RUNTIME_MODULE} found")

    def create_session(
        self, package: ModelPackage, options: Mapping[str, Any]
    ) -> ${class_name}Session:
        # The runtime hands over backends.options.$plugin checked and defaulted; check again for
        # callers that build the mapping themselves.
        checked = check_section(OPTIONS_PATH, OPTIONS, options)
        return ${class_name}Session(package.weights_path("onnx"), int(checked["threads"]))
''',
    "patch": '''"""The `$plugin` patch: logs how many detections every N-th rendered frame had.

It wraps ``inference``'s ``render_boxes`` sink; the runtime keeps the original and puts it back
(identity-equal) at ``shutdown()``.
"""

from __future__ import annotations

import functools
import logging

from coral_inference.runtime.options import Option, Section
from coral_inference.runtime.patching import Patch

log = logging.getLogger(__name__)

SINKS = "inference.core.interfaces.stream.sinks"
RENDER_BOXES = f"{SINKS}:render_boxes"
OPTIONS = Section(
    "the $plugin patch",
    {"every": Option("int", 100, "log every N-th rendered frame", minimum=1)},
)


class ${class_name}Patch(Patch):
    name = "$plugin"
    description = "log the detection count of every N-th rendered frame"
    inference = "$inference_range"  # the versions you tested; outside them: skipped
    targets = (SINKS, RENDER_BOXES)  # resolved before anything changes

    def __init__(self) -> None:
        self.rendered = 0

    def install(self, patcher, targets, context):
        every = int(context.config.get("patches.$plugin.every", 100) or 100)

        def make_wrapper(original):
            @functools.wraps(original)
            def render_boxes(predictions, video_frame, *args, **kwargs):
                self.rendered += 1
                if self.rendered % every == 0:
                    count = len(predictions.get("predictions", [])) if isinstance(
                        predictions, dict
                    ) else "?"
                    log.info("$plugin: frame %d had %s detections", self.rendered, count)
                return original(predictions, video_frame, *args, **kwargs)

            return render_boxes

        patcher.wrap(targets[SINKS], "render_boxes", make_wrapper)
''',
    "workflow": '''"""``coral/$plugin@v1``: how many detections a step produced.

Imports ``inference``'s workflows engine at module level; only the plugin's hook imports this.
"""

from typing import Literal

import supervision as sv
from inference.core.workflows.execution_engine.entities.base import OutputDefinition
from inference.core.workflows.execution_engine.entities.types import (
    INTEGER_KIND,
    OBJECT_DETECTION_PREDICTION_KIND,
    Selector,
)
from inference.core.workflows.prototypes.block import (
    BlockResult,
    WorkflowBlock,
    WorkflowBlockManifest,
)
from pydantic import ConfigDict, Field


class ${class_name}Manifest(WorkflowBlockManifest):
    """A step: ``{"type": "coral/$plugin@v1", "name": "count",
    "predictions": "$$steps.model.predictions"}``."""

    model_config = ConfigDict(
        json_schema_extra={
            "name": "$title",
            "version": "v1",
            "short_description": "Count detections.",
            "long_description": "Outputs `count`, the number of detections in `predictions`.",
            "license": "Apache-2.0",
            "block_type": "analytics",
        }
    )
    type: Literal["coral/$plugin@v1"]
    predictions: Selector(kind=[OBJECT_DETECTION_PREDICTION_KIND]) = Field(
        description="Detections to count.", examples=["$$steps.model.predictions"]
    )

    @classmethod
    def describe_outputs(cls) -> list[OutputDefinition]:
        return [OutputDefinition(name="count", kind=[INTEGER_KIND])]

    @classmethod
    def get_execution_engine_compatibility(cls) -> str | None:
        return ">=1.3.0,<2.0.0"


class ${class_name}BlockV1(WorkflowBlock):
    """Runs once per image of a batch."""

    @classmethod
    def get_manifest(cls) -> type[WorkflowBlockManifest]:
        return ${class_name}Manifest

    def run(self, predictions: sv.Detections) -> BlockResult:
        return {"count": len(predictions)}
''',
    "service": '''"""The `$plugin` service: writes the runtime's state to a JSON file regularly."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

from coral_inference.runtime.options import Option, Section

log = logging.getLogger(__name__)

OPTIONS = Section(
    "the $plugin service",
    {
        "path": Option("path", "./coral-output/$plugin.json", "where the state is written"),
        "interval_seconds": Option("float", 5.0, "time between writes", minimum=0.1),
    },
)
#: The attribute of the RuntimeContext that holds this service while it runs.
ATTRIBUTE = "_${package}_service"


class StatusWriter:
    """A thread writing ``context.state`` to ``path`` every ``interval`` seconds."""

    def __init__(self, context, path: Path, interval: float) -> None:
        self.context = context
        self.path = path
        self.interval = interval
        self.writes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="$plugin", daemon=True)

    @classmethod
    def start_for(cls, context) -> StatusWriter:
        config = context.config
        path = Path(config.get("services.$plugin.path") or OPTIONS.keys["path"].default)
        interval = float(config.get("services.$plugin.interval_seconds") or 5.0)
        service = cls(context, path, interval)
        setattr(context, ATTRIBUTE, service)
        service.write()
        service._thread.start()
        return service

    @classmethod
    def stop_for(cls, context) -> None:
        service = getattr(context, ATTRIBUTE, None)
        if service is not None:
            service.stop()
            delattr(context, ATTRIBUTE)

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.context.state, default=str), encoding="utf-8")
        temporary.replace(self.path)
        self.writes += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write()
            except OSError as exc:
                log.warning("$plugin: cannot write %s: %s", self.path, exc)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.write()
''',
}

TEST = {
    "backend": '''"""The `$plugin` backend on the sample model, through the runtime."""

from coral_inference.models.inference_models import open_model


def test_backend_is_registered_and_detects_the_sample_face(
    coral_runtime, coral_sample_model, coral_sample_frames
):
    context = coral_runtime(
        {"plugins": {"only": ["$plugin"]}, "backends": {"options": {"$plugin": {"threads": 1}}}}
    )
    assert context.state["backends"]["$plugin"]["available"], context.state["backends"]
    assert context.get_backend("$plugin").name == "$plugin"
    with open_model(coral_sample_model, context, backend="$plugin") as runner:
        found = [len(runner.predict(frame)) for frame in coral_sample_frames[:5]]
    assert found == [1, 1, 1, 1, 1]  # the sample video starts with one face per frame
''',
    "patch": '''"""The `$plugin` patch: applied by init, reverted identity-equal."""

from coral_inference.runtime.compat import import_object

from $package.patch import RENDER_BOXES, ${class_name}Patch


def test_patch_reverts_identity_equal(coral_assert_patch_reverts):
    record = coral_assert_patch_reverts(${class_name}Patch(), targets=[RENDER_BOXES])
    assert record.status == "applied"


def test_patch_is_applied_by_the_runtime(coral_runtime):
    original = import_object(RENDER_BOXES)
    context = coral_runtime(
        {"plugins": {"only": ["$plugin"]}, "patches": {"$plugin": {"every": 5}}}
    )
    assert context.is_patch_enabled("$plugin"), context.state["patches"]
    assert context.config.get("patches.$plugin.every") == 5
    assert import_object(RENDER_BOXES).__wrapped__ is original
''',
    "workflow": '''"""`coral/$plugin@v1` in inference's execution engine."""

WORKFLOW = {
    "version": "1.0",
    "inputs": [
        {
            "type": "WorkflowBatchInput",
            "name": "detections",
            "kind": ["object_detection_prediction"],
        }
    ],
    "steps": [{"type": "coral/$plugin@v1", "name": "count", "predictions": "$$inputs.detections"}],
    "outputs": [{"type": "JsonField", "name": "count", "selector": "$$steps.count.count"}],
}


def _box(x):
    return {"x": x, "y": 50.0, "width": 20.0, "height": 30.0, "confidence": 0.9,
            "class": "car", "class_id": 0}


def test_block_counts_detections(coral_runtime):
    from inference.core.workflows.execution_engine.core import ExecutionEngine

    context = coral_runtime({"plugins": {"only": ["$plugin"]}})
    assert [block.__name__ for block in context.workflow_blocks] == ["${class_name}BlockV1"]
    engine = ExecutionEngine.init(workflow_definition=WORKFLOW, init_parameters={})
    image = {"width": 320, "height": 240}
    result = engine.run(
        runtime_parameters={
            "detections": [
                {"image": image, "predictions": [_box(40), _box(120)]},
                {"image": image, "predictions": []},
            ]
        }
    )
    assert result == [{"count": 2}, {"count": 0}]
''',
    "service": '''"""The `$plugin` service: runs while the runtime does."""

import json

import coral_inference


def test_service_writes_state_while_running(coral_runtime, coral_output_dir):
    written = coral_output_dir / "state.json"
    context = coral_runtime(
        {
            "plugins": {"only": ["$plugin"]},
            "services": {"$plugin": {"path": str(written), "interval_seconds": 0.5}},
        }
    )
    (record,) = [p for p in context.plugins if p.name == "$plugin"]
    assert record.status == "loaded", record.reason
    assert json.loads(written.read_text())["platform"] == "cpu"
    coral_inference.shutdown()
    state = json.loads(written.read_text())  # the last write, at shutdown
    assert any(p["name"] == "$plugin" for p in state["plugins"])
''',
}
