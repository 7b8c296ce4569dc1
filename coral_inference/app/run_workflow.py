"""``coral run --workflow SPEC.json``: run a workflow specification instead of a bare model.

The pipeline is ``inference``'s ``InferencePipeline.init_with_workflow`` with serialised
results, so a workflow output named ``predictions`` (object detections) feeds the same sinks
and summary counts as ``coral run --model``. The JSON outputs of the last frame (counts,
aggregates; images and ``predictions`` left out) go into the summary's ``workflow`` entry.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coral_inference.app.run import RunError, sequential_sink_mode


def load_spec(path: Path) -> dict[str, Any]:
    """The workflow specification in ``path``; RunError naming the file when it is unusable."""
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunError(f"--workflow {path}: cannot read it ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"--workflow {path}:{exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("steps"), list):
        raise RunError(f"--workflow {path}: expected a workflow specification with 'steps'")
    return spec


def _json_outputs(result: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in (result or {}).items() if isinstance(result, dict) else ():
        if name == "predictions" or (isinstance(value, dict) and value.get("type") == "base64"):
            continue
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[name] = value
    return out


class LastOutputs:
    """Wraps the ``on_prediction`` sink and keeps the last frame's JSON outputs."""

    def __init__(self, spec_path: Path, sink: Callable[[Any, Any], Any]) -> None:
        self.summary: dict[str, Any] = {"spec": str(spec_path), "outputs": {}}
        self._sink = sink
        self._lock = threading.Lock()

    def __call__(self, result: Any, frame: Any) -> Any:
        outcome = self._sink(result, frame)
        with self._lock:
            self.summary["outputs"] = _json_outputs(result)
        return outcome


def init_pipeline(
    video_reference: str | int | list[str | int],
    spec: dict[str, Any],
    model_id: str,
    on_prediction: Callable[[Any, Any], Any],
    status_update_handlers: list[Callable[[Any], None]] | None = None,
) -> Any:
    """``InferencePipeline.init_with_workflow``; a ``model_id`` input of the spec gets the
    ``--model`` id; ``status_update_handlers`` receive inference's status updates."""
    from inference import InferencePipeline

    declared = {i.get("name") for i in spec.get("inputs", []) if isinstance(i, dict)}
    parameters = {"model_id": model_id} if model_id and "model_id" in declared else {}
    options: dict[str, Any] = {}
    if "sink_mode" in inspect.signature(InferencePipeline.init_with_workflow).parameters:
        options["sink_mode"] = sequential_sink_mode()
    elif isinstance(video_reference, list):  # inference 0.54 would hand the sinks batches
        raise RunError(
            "--workflow with several --source needs inference 1.x (this inference's workflow "
            "pipelines take no sink_mode): run one source per coral run, or upgrade inference"
        )
    return InferencePipeline.init_with_workflow(
        video_reference=video_reference,
        workflow_specification=spec,
        workflows_parameters=parameters,
        on_prediction=on_prediction,
        serialize_results=True,
        status_update_handlers=status_update_handlers,
        **options,
    )
