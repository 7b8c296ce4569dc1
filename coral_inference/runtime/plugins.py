"""Plugin discovery, version gating, isolation and listing.

Each entry point in the groups below goes through the same steps, and the first one that fails
decides its record:

1. allow/deny list (``plugins.only`` / ``plugins.disabled``) -> ``disabled``
2. its distribution's ``Requires-Dist`` on ``coral-inference`` / ``inference`` checked against
   what is installed, **before** importing anything -> ``incompatible``
3. import of the entry point's object -> ``failed``
4. registration and pluggy's validation (unknown hooks, unknown arguments) -> ``invalid``

Later, an exception raised inside one of its hooks turns a loaded plugin into ``failed``.
Every other plugin still loads. This deliberately does not use pluggy's
``load_setuptools_entrypoints``, which stops at the first broken plugin.
"""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import types
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pluggy

from coral_inference.runtime import compat, hookspecs
from coral_inference.runtime.backends import BackendAdapter

# The original guide's PluginSpec factories (re-exported: its plugins import it from here).
from coral_inference.runtime.legacy_spec import PluginSpec, plugin_from_entry_point
from coral_inference.runtime.options import Section
from coral_inference.runtime.patching import PatchContext, PatchRecord
from coral_inference.runtime.records import (
    DISABLED,
    INCOMPATIBLE,
    INVALID,
    LOADED,
    PROBLEM_STATUSES,
    PluginRecord,
)
from coral_inference.runtime.schema import PluginOptions, declarable

if TYPE_CHECKING:
    import click

    from coral_inference.models.decoders import DecoderRegistry
    from coral_inference.runtime import RuntimeContext
    from coral_inference.runtime.config import RuntimeDescriptor
    from coral_inference.services.frame_sinks import FrameSinkRegistration

log = logging.getLogger(__name__)
__all__ = ["PluginManager", "PluginFilter", "PluginSpec", "GROUPS"]

GROUPS: dict[str, str] = {
    "backends": "coral_inference.backends",
    "patches": "coral_inference.patches",
    "workflows": "coral_inference.workflows",
}


def docstring_summary(plugin: object) -> str:
    """The first line of a plugin's docstring (its module's for a module plugin, its class's
    for an object of a class of its own), without reStructuredText backquotes: its description
    in ``coral plugins list``."""
    own = isinstance(plugin, types.ModuleType) or type(plugin).__module__ not in (
        "builtins",
        "types",
    )
    lines = (getattr(plugin, "__doc__", None) or "").strip().splitlines() if own else []
    return lines[0].replace("``", "").strip() if lines else ""


@dataclass(frozen=True)
class PluginFilter:
    """Which plugins the configuration allows: a deny list and an optional allow list."""

    disabled: frozenset[str] = frozenset()
    only: frozenset[str] | None = None

    @classmethod
    def from_config(cls, config: RuntimeDescriptor) -> PluginFilter:
        only = config.get("plugins.only")
        return cls(
            disabled=frozenset(config.get("plugins.disabled") or ()),
            only=None if only is None else frozenset(only),
        )

    def reason_to_skip(self, name: str) -> str | None:
        if name in self.disabled:
            return "disabled by plugins.disabled"
        if self.only is not None and name not in self.only:
            return "not listed in plugins.only"
        return None


def _entry_points(groups: Iterable[str]) -> Iterator[tuple[str, metadata.EntryPoint]]:
    """Yield (short group, entry point) from one pass over the installed distributions.

    ``importlib.metadata.entry_points()`` reads only ``entry_points.txt`` files and keeps the
    first distribution of a name on ``sys.path``; each entry point knows its distribution.
    """
    everything = metadata.entry_points()
    for group in groups:
        for ep in everything.select(group=GROUPS[group]):
            yield group, ep


@dataclass(frozen=True)
class _Installed:
    """The versions gating compares against, read once per discovery."""

    core: str | None
    inference: compat.InstalledInference


@dataclass(frozen=True)
class _DistInfo:
    """What discovery needs of a distribution's METADATA, parsed once (importlib.metadata
    parses the file again on every ``.metadata`` / ``.version`` / ``.requires``)."""

    name: str | None
    version: str | None
    requires: list[str] | None


def _dist_info(dist: metadata.Distribution | None) -> _DistInfo:
    if dist is None:
        return _DistInfo(None, None, None)
    meta = dist.metadata
    return _DistInfo(meta["Name"], meta["Version"], meta.get_all("Requires-Dist"))


def _gate(record: PluginRecord, requires: list[str] | None, installed: _Installed) -> str | None:
    """Return why the plugin's declared requirements rule it out here, or None."""
    inference = installed.inference
    for requirement in compat.gated_requirements(requires):
        record.requires.append(str(requirement))
        target = compat.requirement_targets(requirement)
        if target == compat.CORE_DISTRIBUTION:
            check = compat.check_range(
                installed.core, str(requirement.specifier), what="coral-inference"
            )
        else:
            check = compat.check_range(
                inference.version, str(requirement.specifier), what=requirement.name
            )
        if not check.ok:
            return f"{check.reason}; install a version of {record.name!r} that supports it"
    return None


@dataclass(frozen=True)
class PluginSelection:
    """What of a configuration decides which plugins load: ``plugins.*``,
    ``backends.auto_discover`` and ``backends.modules``."""

    filter: PluginFilter
    auto_discover: bool
    modules: tuple[str, ...]

    @classmethod
    def from_config(cls, config: RuntimeDescriptor) -> PluginSelection:
        return cls(
            PluginFilter.from_config(config),
            bool(config.get("backends.auto_discover", True)),
            tuple(config.get("backends.modules") or ()),
        )


class PluginManager:
    """The hook host: discovers, gates, loads and calls plugins, one typed method per hook.

    One command builds one, from the configuration's lenient first pass
    (:meth:`from_config`); :func:`~coral_inference.runtime.config.load_config` takes it for the
    plugins' option sections and hands it on with the descriptor, and
    :func:`~coral_inference.runtime.init` runs the runtime with it (as pytest's ``Config``
    owns the one manager).
    """

    def __init__(self, plugin_filter: PluginFilter | None = None) -> None:
        self.filter = plugin_filter or PluginFilter()
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        #: What :meth:`from_config` loaded (None: built by hand).
        self.selection: PluginSelection | None = None
        #: Set once a runtime runs on it: a later ``init`` loads the plugins afresh.
        self.in_use = False

    @classmethod
    def from_config(cls, config: RuntimeDescriptor) -> PluginManager:
        """Discover and load what ``config`` allows: its filter, ``backends.auto_discover``
        and the ``backends.modules`` import paths."""
        selection = PluginSelection.from_config(config)
        manager = cls(selection.filter)
        manager.selection = selection
        manager.discover([g for g in GROUPS if g != "backends" or selection.auto_discover])
        for module_path in selection.modules:
            manager.register_path(module_path, group="backends")
        return manager

    def serves(self, config: RuntimeDescriptor) -> bool:
        """Whether this manager loaded what ``config`` selects, and no runtime used it yet."""
        return not self.in_use and self.selection == PluginSelection.from_config(config)

    def options(self) -> PluginOptions:
        """What the loaded plugins contribute to the schema (see
        :func:`coral_inference.runtime.schema.compose`)."""
        records = list(self.records.values())
        unchecked = {
            f"backends.options.{r.name}": f"plugin {r.name!r} is {r.status}"
            for r in records
            if r.group == "backends" and r.status != LOADED
        }
        return PluginOptions(
            patch_names=[r.name for r in records if r.group == "patches"],
            declared=self.declare_options(),
            unchecked=unchecked,
        )

    # -- loading -------------------------------------------------------------------------------

    def discover(self, groups: Iterable[str] = GROUPS, *, load: bool = True) -> list[PluginRecord]:
        """Walk the entry points once; gate and (with ``load``) import and register each."""
        installed = _Installed(compat.core_version(), compat.installed_inference())
        dists: dict[int, _DistInfo] = {}
        for group, ep in _entry_points(groups):
            # Entry points of one distribution share its Distribution object.
            info = dists.get(id(ep.dist))
            if info is None:
                info = dists[id(ep.dist)] = _dist_info(ep.dist)
            record = PluginRecord(
                name=ep.name,
                group=group,
                entry_point=ep.value,
                distribution=info.name,
                version=info.version,
            )
            if ep.name in self.records:
                other = self.records[ep.name]
                record.status = INVALID
                record.reason = (
                    f"name {ep.name!r} is already used by {other.label} in group {other.group!r};"
                    " rename one of the entry points"
                )
                self.records[f"{group}:{ep.name}"] = record
                continue
            self.records[ep.name] = record
            skip = self.filter.reason_to_skip(ep.name)
            if skip:
                record.status, record.reason = DISABLED, skip
                continue
            blocked = _gate(record, info.requires, installed)
            if blocked:
                record.status, record.reason = INCOMPATIBLE, blocked
                continue
            if load:
                self._load(record, ep.load)
        return list(self.records.values())

    def register_path(self, path: str, *, group: str = "backends") -> PluginRecord:
        """Load a plugin named by import path (the ``backends.modules`` config entries)."""
        record = PluginRecord(path, group, path, None, None)
        self.records[path] = record
        skip = self.filter.reason_to_skip(path)
        if skip:
            record.status, record.reason = DISABLED, skip
        else:
            self._load(record, lambda: compat.import_object(path))
        return record

    def _load(self, record: PluginRecord, load: Callable[[], object]) -> None:
        try:
            plugin = load()
        except BaseException as exc:  # noqa: BLE001 - a plugin's SystemExit must not exit us
            if isinstance(exc, KeyboardInterrupt):
                raise
            record.fail(
                f"importing {record.entry_point!r} raised {type(exc).__name__}: {exc}; "
                f"fix or uninstall {record.distribution or record.name!r}, or disable it"
            )
            return
        plugin = plugin_from_entry_point(plugin, record)  # a PluginSpec factory -> plugin object
        if plugin is None:
            return
        try:
            self.pm.register(plugin, name=record.name)
            self.pm.check_pending()
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            record.status = INVALID
            detail = " ".join(str(exc).split()).replace(f" in plugin {plugin!r}", "")
            record.reason = (
                f"{detail}; check hook names and arguments against "
                "coral_inference.runtime.hookspecs"
            )
            log.debug("%s is invalid: %s", record.label, detail)
            return
        callers = self.pm.get_hookcallers(plugin) or []
        record.hooks = sorted(caller.name for caller in callers)
        record.description = record.description or docstring_summary(plugin)
        wrappers = sorted(
            caller.name
            for caller in callers
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper)
        )
        if wrappers:
            self.pm.unregister(plugin)
            record.status = INVALID
            record.reason = (
                f"{', '.join(wrappers)}: hookwrapper/wrapper implementations are not supported "
                "(coral-inference calls each plugin on its own, to isolate failures); "
                "drop the wrapper option"
            )
            return
        if not record.hooks:
            self.pm.unregister(plugin)
            record.status = INVALID
            record.reason = (
                f"{record.entry_point!r} has no @coral_inference.hookimpl functions; "
                "the entry point must name the module that holds them"
            )

    # -- calling hooks: one typed method per hook ---------------------------------------------

    def register_backends(self) -> list[tuple[str, BackendAdapter]]:
        """(plugin name, adapter) for every backend registered by a loaded plugin."""
        out = []
        for record, adapter in self._collect("register_backend"):
            if isinstance(adapter, BackendAdapter):
                out.append((record.name, adapter))
            else:
                record.fail(f"register_backend got {adapter!r}, not a BackendAdapter")
        return out

    def declare_options(self) -> dict[str, Section]:
        """``path -> Section`` declared by the loaded plugins; a path outside
        ``backends.options.* / patches.* / services.*``, a non-Section, or a path another plugin
        already declared marks the declaring plugin ``failed``."""
        declared: dict[str, Section] = {}
        owners: dict[str, str] = {}
        for record, item in self._collect("declare_options"):
            path, section = item if isinstance(item, tuple) and len(item) == 2 else (None, None)
            if not isinstance(path, str) or not isinstance(section, Section):
                record.fail(f"declare_options expects declare(path, Section), got {item!r}")
            elif not declarable(path):
                record.fail(
                    f"declare_options: {path!r} is not a plugin's to declare; use "
                    "backends.options.<backend>, patches.<patch> or services.<new name>",
                )
            elif path in declared:
                record.fail(f"declare_options: {path!r} is already declared by {owners[path]!r}")
            else:
                declared[path], owners[path] = section, record.name
        return declared

    def register_decoders(self, registry: DecoderRegistry) -> list[str]:
        """Register every plugin's decoders into ``registry``; return the names added. A name
        another plugin (or a built-in) already uses marks the later plugin ``failed``."""
        from coral_inference.models.decoders import DecoderClash

        added = []
        for record, item in self._collect("register_decoder"):
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                record.fail(f"register_decoder expects register(name, decoder), got {item!r}")
                continue
            name, decoder = item
            if not callable(decoder):
                record.fail(f"register_decoder({name!r}, ...) got {decoder!r}")
                continue
            try:
                registry.register(name, decoder)
            except DecoderClash as exc:
                record.fail(f"register_decoder: {exc}; rename the decoder")
            else:
                added.append(name)
        return added

    def apply_patches(self, context: PatchContext) -> list[PatchRecord]:
        """Call each ``apply_patch`` (built-ins first, then by plugin name) and collect records."""
        records = []
        for record, result in self._call_each("apply_patch", context, per_plugin=True):
            if result is None:
                continue
            if isinstance(result, PatchRecord):
                records.append(result)
            else:
                record.status = INVALID
                record.reason = f"apply_patch returned {result!r}; expected a PatchRecord or None"
        return records

    def register_frame_sinks(self, config: RuntimeDescriptor) -> list[FrameSinkRegistration]:
        """Every loaded plugin's checked frame-sink registrations. A wrong ``register(...)``
        argument marks the plugin ``failed`` and discards what it registered."""
        from coral_inference.services.frame_sinks import FrameSinkRegistration

        out: list[FrameSinkRegistration] = []
        for record, impl in self._implementations("register_frame_sinks"):
            mine: list[FrameSinkRegistration] = []

            def register(
                *args: Any,
                _into: list[FrameSinkRegistration] = mine,
                _record: PluginRecord = record,
                **kwargs: Any,
            ) -> None:
                _into.append(
                    FrameSinkRegistration.checked(_record.name, _record.fail, *args, **kwargs)
                )

            arguments = {"register": register, "config": config}
            try:
                impl.function(*[arguments[name] for name in impl.argnames])
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                record.fail(f"hook register_frame_sinks raised {type(exc).__name__}: {exc}")
                continue
            out.extend(mine)
        return out

    def register_workflow_blocks(self) -> list[type]:
        blocks = []
        for record, block in self._collect("register_workflow_block"):
            if isinstance(block, type):
                blocks.append(block)
            else:
                record.fail(f"register_workflow_block got {block!r}, not a class")
        return blocks

    def register_commands(self, cli: click.Group) -> None:
        self._call_each("register_commands", cli)

    def runtime_started(self, context: RuntimeContext) -> None:
        self._call_each("runtime_started", context)

    def runtime_stopping(self, context: RuntimeContext) -> None:
        self._call_each("runtime_stopping", context)

    def _implementations(self, hook_name: str) -> list[tuple[PluginRecord, Any]]:
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        found = [(self.records[impl.plugin_name], impl) for impl in impls]
        found = [(record, impl) for record, impl in found if record.status == LOADED]
        # As in pluggy, tryfirst before the rest before trylast; within each, the built-in
        # plugins (shipped by coral-inference itself) first, then by name.
        found.sort(
            key=lambda p: (
                0 if p[1].tryfirst else 2 if p[1].trylast else 1,
                p[0].distribution != compat.CORE_DISTRIBUTION,
                p[0].name,
            )
        )
        return found

    def _call_each(
        self, hook_name: str, argument: Any, *, per_plugin: bool = False
    ) -> list[tuple[PluginRecord, Any]]:
        """Call every implementation of a one-argument hook on its own.

        A raising implementation marks its plugin ``failed`` and is left out of the results.
        With ``per_plugin`` the argument's ``for_plugin(name)`` is passed instead.
        """
        results = []
        for record, impl in self._implementations(hook_name):
            value = argument.for_plugin(record.name) if per_plugin else argument
            try:
                results.append((record, impl.function(*[value for _ in impl.argnames])))
            except Exception as exc:  # noqa: BLE001 - isolation is the point
                record.fail(f"hook {hook_name} raised {type(exc).__name__}: {exc}")
        return results

    def _collect(self, hook_name: str) -> list[tuple[PluginRecord, Any]]:
        """Call a ``register(...)`` callback hook; return what each plugin registered.

        What a plugin registered before raising is discarded with the failure.
        """
        collected: list[tuple[PluginRecord, Any]] = []
        for record, impl in self._implementations(hook_name):
            mine: list[Any] = []

            def register(*item: Any, _into: list[Any] = mine) -> None:
                _into.append(item[0] if len(item) == 1 else item)

            try:
                impl.function(*[register for _ in impl.argnames])
            except Exception as exc:  # noqa: BLE001
                record.fail(f"hook {hook_name} raised {type(exc).__name__}: {exc}")
                continue
            collected.extend((record, item) for item in mine)
        return collected

    # -- queries ------------------------------------------------------------------------------

    def problems(self) -> list[PluginRecord]:
        return [r for r in self.records.values() if r.status in PROBLEM_STATUSES]
