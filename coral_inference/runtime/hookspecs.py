"""The hook specifications: the public contract between coral-inference and its plugins.

A plugin is a module (or any object) with functions marked ``@coral_inference.hookimpl`` whose
names match the functions below, registered through one of the entry-point groups
``coral_inference.backends``, ``coral_inference.patches`` or ``coral_inference.workflows``.
A hookimpl may accept any subset of a spec's arguments.

The runtime calls every implementation on its own, so one plugin raising never stops the others:
the exception is recorded against that plugin (status ``failed``) and the call goes on. For the
same reason pluggy's ``hookwrapper=True`` / ``wrapper=True`` implementations are refused (the
plugin is recorded ``invalid``); ``tryfirst`` / ``trylast`` order the calls as in pluggy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from coral_inference.models.decoders import Decoder
    from coral_inference.runtime import RuntimeContext
    from coral_inference.runtime.backends import BackendAdapter
    from coral_inference.runtime.config import RuntimeDescriptor
    from coral_inference.runtime.options import Section
    from coral_inference.runtime.patching import PatchContext, PatchRecord
    from coral_inference.services.frame_sinks import RegisterFrameSink

PROJECT_NAME = "coral_inference"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_backend(register: Callable[[BackendAdapter], None]) -> None:
    """Register chip backends (ONNX Runtime, RKNN, ...).

    Called once per :func:`coral_inference.init`, after plugins are loaded and before patches are
    applied. Call ``register(adapter)`` once per backend; ``adapter`` follows
    :class:`coral_inference.runtime.backends.BackendAdapter` (a ``name``, the weight
    ``formats`` it loads, a cheap ``availability()`` probe and ``create_session(package,
    options)``, handed the model package to load). Import heavy runtimes lazily, inside
    ``create_session``, so listing plugins stays fast. Returns nothing.
    """


@hookspec
def declare_options(declare: Callable[[str, Section], None]) -> None:
    """Declare the plugin's configuration sections, typed.

    Called whenever configuration is loaded (``coral_inference.init``, ``coral config
    validate|show|init``), before the values are checked. Call ``declare(path, section)`` with a
    :class:`coral_inference.runtime.options.Section` of
    :class:`~coral_inference.runtime.options.Option` s for each section the plugin reads:
    ``backends.options.<backend>``, ``patches.<patch>`` (settings beside the ``enabled``
    switch) or ``services.<name>``. The runtime then validates those keys (unknown keys get a
    did-you-mean), fills in defaults, parses env / ``--set`` text by the declared types, and
    lists them in ``coral config init``; a backend's ``create_session`` receives the checked
    mapping. A second plugin declaring a path already taken is recorded ``failed``. Returns
    nothing.
    """


@hookspec
def register_decoder(register: Callable[[str, Decoder], None]) -> None:
    """Register output decoders for model packages (the manifest's ``decoder.type``).

    Called once per :func:`coral_inference.init`. Call ``register(name, decoder)`` where
    ``decoder(outputs, manifest, context) -> Detections`` turns raw model outputs into boxes in
    model-input pixels (``context`` is a :class:`~coral_inference.models.decoders.DecodeContext`:
    input size and thresholds); the runner maps them back to the source frame. Returns nothing.
    """


@hookspec
def apply_patch(context: PatchContext) -> PatchRecord | None:
    """Apply one patch to ``inference`` and say what happened.

    Called once per :func:`coral_inference.init`, in plugin-name order with the built-in patches
    first, after backends are registered. Declare the patch as a
    :class:`coral_inference.runtime.patching.Patch` (name, supported ``inference`` range, the
    upstream attributes it replaces) and ``return context.apply(patch)``: the runtime then skips it
    with a reason when it is disabled in config or out of range, resolves every target before
    changing anything, applies it once per process however often ``init`` runs, and reverts it on
    :func:`coral_inference.shutdown`. Return ``None`` when the plugin has nothing to apply here.
    """


@hookspec
def register_frame_sinks(register: RegisterFrameSink, config: RuntimeDescriptor) -> None:
    """Receive every processed frame's results, from every pipeline, off the inference thread.

    Called once per :func:`coral_inference.init`, before patches are applied, with the
    runtime's ``config`` (read your declared options there; register nothing to stay off). Call
    ``register(factory, with_image=False, queue_size=64, close_timeout_s=10.0)`` once per sink.
    Each time a pipeline starts (``coral run``, ``coral serve``, any ``InferencePipeline`` built
    after ``init``), ``factory(pipeline)`` is called with a
    :class:`~coral_inference.services.frame_sinks.SinkPipeline` (``pipeline_id``, ``config``,
    an ``ended`` event) and returns an object with ``on_frame(result)`` and ``close()``, or None
    to skip that pipeline. ``on_frame`` gets a
    :class:`~coral_inference.services.frame_sinks.FrameResult` per frame, in order: pipeline
    and source ids, frame id, capture ``timestamp`` (UTC), ``end_to_end_ms``, ``detections``,
    ``predictions`` in source-frame pixels, and ``image`` (the BGR frame) only with
    ``with_image=True``. The calls run on the sink's own thread behind a queue of
    ``queue_size`` frames: when it is full new frames are dropped and counted, never waited
    for. ``close()`` runs once the queue is drained after the pipeline ends (frames still
    queued after ``close_timeout_s`` are dropped). A factory or sink that raises records the
    plugin ``failed`` (logged once); the pipeline and the other sinks go on. Frames, drops and
    failures per plugin appear in ``coral run``'s summary and ``coral serve``'s ``/metrics``.
    Returns nothing.
    """


@hookspec
def register_workflow_block(register: Callable[[type], None]) -> None:
    """Register workflow block classes for ``inference``'s workflows engine.

    Called once per :func:`coral_inference.init`. Call ``register(block_class)`` for each block
    (a ``WorkflowBlock`` subclass with its manifest). The runtime hands them to ``inference``
    through its ``WORKFLOWS_PLUGINS`` loader, so they appear in workflow definitions and the
    blocks description endpoint. Returns nothing.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``coral`` command line.

    Called once when the ``coral`` CLI starts, with the root click group; add commands with
    ``@cli.command()`` or ``cli.add_command(...)``. Keep imports inside the command bodies.
    Returns nothing.
    """


@hookspec
def runtime_started(context: RuntimeContext) -> None:
    """Called at the end of :func:`coral_inference.init`, with the ready context.

    Use it to start services that need the backends and patches in place. Returns nothing.
    """


@hookspec
def runtime_stopping(context: RuntimeContext) -> None:
    """Called at the start of :func:`coral_inference.shutdown`, before patches are reverted.

    Flush and close what ``runtime_started`` opened. Returns nothing.
    """
