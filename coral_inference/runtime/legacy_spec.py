"""The original plans' compatibility surface, in one place.

The seeds' publishing guide and runtime had names of their own; coral-inference keeps them
working here, on top of the same machinery as everything else:

* **PluginSpec plugins.** The guide has an entry point (group ``coral_inference.patches`` or
  ``coral_inference.workflows``) name a *factory* that returns a :class:`PluginSpec`::

      def register_camera_stabilizer():
          def activate(config):
              return True
          return PluginSpec(name="camera_stabilizer", activate=activate,
                            description="...", min_core_version="0.0.4",
                            min_inference_version="0.9.0")

  :func:`plugin_from_entry_point` turns such a factory into a plain pluggy plugin object
  (:class:`SpecPlugin`), so the plugin manager gates, lists, disables and isolates it exactly
  like a module of ``@hookimpl`` functions:

  - the distribution's ``Requires-Dist`` is still checked before import; the spec's minimums can
    only be read once the factory ran, and are checked before ``activate`` ever is (below a
    minimum -> ``incompatible``);
  - in ``coral_inference.patches`` the spec is a patch named ``spec.name`` (:class:`SpecPatch`):
    ``activate(config)`` runs from ``apply_patch`` (so ``patches.<name>: false`` turns it off,
    and ``state`` lists it under ``patches``); in the other groups it runs from
    ``runtime_started``;
  - ``activate`` returning ``False`` or raising -> the plugin is ``failed`` with the reason;
  - ``default_config_overrides`` become the defaults of typed options under ``patches.<name>``
    (patches) or ``services.<name>`` (other groups), declared through ``declare_options``.

  The guide imports ``PluginSpec`` from :mod:`coral_inference.runtime.plugins`, which
  re-exports it.
* **State names.** :func:`with_seed_names` adds ``plugins_loaded``, ``patches_enabled`` and
  ``backends_enabled`` (name -> bool) to a runtime's ``state``.
* **Environment names.** :func:`env_alias` maps ``CORAL_ENABLE_<PATCH>``,
  ``CORAL_RUNTIME_PLATFORM`` and ``CORAL_BACKEND_MODULES`` / ``CORAL_BACKENDS`` to the
  configuration keys they stand for; the configuration's env source reads them through it.
* **Command name.** ``coral-runtime`` is a second console script of the ``coral`` command line
  (declared in ``pyproject.toml``), so the guide's ``coral-runtime plugins list`` works.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from coral_inference.runtime import compat, hookspecs
from coral_inference.runtime.options import Option, Section
from coral_inference.runtime.patching import APPLIED, Patch, PatchContext, Patcher, PatchRecord
from coral_inference.runtime.records import INCOMPATIBLE, INVALID, LOADED, PluginRecord

if TYPE_CHECKING:
    from coral_inference.runtime import RuntimeContext

log = logging.getLogger(__name__)

#: The pluggy attribute that marks a function as a hook implementation.
_HOOKIMPL_MARK = f"{hookspecs.PROJECT_NAME}_impl"
_OPTION_KINDS = ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"))

#: The original plans' environment variables with names of their own, and the keys they set.
ENV_ALIASES = {
    "CORAL_RUNTIME_PLATFORM": "platform",
    "CORAL_BACKEND_MODULES": "backends.modules",
    "CORAL_BACKENDS": "backends.modules",
}
#: ``CORAL_ENABLE_<PATCH>=on|off`` switches ``patches.<patch>``.
ENV_ENABLE_PREFIX = "CORAL_ENABLE_"


def env_alias(name: str) -> str | None:
    """The configuration key the original plans' variable ``name`` sets, or None when ``name``
    is not one of theirs."""
    if name in ENV_ALIASES:
        return ENV_ALIASES[name]
    if name.startswith(ENV_ENABLE_PREFIX):
        return f"patches.{name[len(ENV_ENABLE_PREFIX) :].lower()}"
    return None


@dataclass(frozen=True)
class PluginSpec:
    """A plugin described by data, as in the original publishing guide.

    ``activate(config)`` receives the runtime configuration (a
    :class:`~coral_inference.runtime.config.RuntimeDescriptor`: ``config.get("platform")``,
    ``config.get("patches.<name>.<key>")``) and returns ``True`` when the plugin is ready;
    ``False`` or an exception marks it ``failed``. ``None`` counts as success.
    """

    name: str
    activate: Callable[[Any], bool | None]
    description: str = ""
    min_core_version: str | None = None
    min_inference_version: str | None = None
    #: Defaults of the plugin's own settings (``patches.<name>.<key>`` / ``services.<name>.<key>``).
    default_config_overrides: Mapping[str, Any] = field(default_factory=dict)

    def requirements(self) -> list[str]:
        """The minimums as requirement strings, as ``coral plugins list`` shows them."""
        out = []
        if self.min_core_version:
            out.append(f"{compat.CORE_DISTRIBUTION}>={self.min_core_version}")
        if self.min_inference_version:
            out.append(f"inference>={self.min_inference_version}")
        return out

    def incompatibility(self, inference: compat.InstalledInference) -> str | None:
        """Why the installed versions are below this spec's minimums, or None."""
        checks = []
        if self.min_core_version:
            checks.append(
                compat.check_range(
                    compat.core_version(), f">={self.min_core_version}", what="coral-inference"
                )
            )
        if self.min_inference_version:
            checks.append(compat.check_range(inference.version, f">={self.min_inference_version}"))
        for check in checks:
            if not check.ok:
                return f"{check.reason} (PluginSpec {self.name!r} minimum)"
        return None

    def options_section(self, config_path: str) -> Section | None:
        """A typed-options section built from ``default_config_overrides`` (None if empty).

        Each key's type is its default's type (bool, int, float, str; a list of strings or a
        mapping otherwise), so ``--set`` / ``CORAL_*`` values are parsed and checked like the
        core's own keys.
        """
        if not self.default_config_overrides:
            return None
        keys: dict[str, Section | Option] = {}
        for key, default in self.default_config_overrides.items():
            keys[key] = Option(_option_kind(default, f"{config_path}.{key}"), default, key)
        return Section(self.description or f"settings of plugin {self.name!r}", keys)


def _option_kind(default: Any, path: str) -> str:
    for python_type, kind in _OPTION_KINDS:
        if isinstance(default, python_type):
            return kind
    if isinstance(default, (list, tuple)) and all(isinstance(item, str) for item in default):
        return "list[str]"
    if isinstance(default, Mapping):
        return "mapping"
    raise TypeError(
        f"default_config_overrides[{path!r}] = {default!r}: use a bool, int, float, str, "
        "list of str or mapping"
    )


class ActivationFailed(RuntimeError):
    """``activate(config)`` returned False or raised; the message is the plugin's reason."""


def activate(spec: PluginSpec, config: Any) -> None:
    """Call ``spec.activate(config)``; raise :class:`ActivationFailed` with the reason."""
    try:
        result = spec.activate(config)
    except Exception as exc:  # noqa: BLE001 - any plugin error becomes its reason
        raise ActivationFailed(f"activate(config) raised {type(exc).__name__}: {exc}") from exc
    if result is False:
        raise ActivationFailed("activate(config) returned False")


class SpecPatch(Patch):
    """A patches-group spec as a patch: installing it is calling ``activate``.

    What ``activate`` changes is the plugin's own business (it does not go through the
    :class:`Patcher`), so the runtime cannot revert it; it is called once per process, like
    every patch.
    """

    def __init__(self, spec: PluginSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.description = spec.description
        self.inference = f">={spec.min_inference_version}" if spec.min_inference_version else ""
        #: Why ``activate`` failed, once it did.
        self.failure: str | None = None

    def install(self, patcher: Patcher, targets: dict[str, Any], context: PatchContext) -> None:
        """Call ``activate(context.config)``; a failure is kept in :attr:`failure` and raised."""
        try:
            activate(self.spec, context.config)
        except ActivationFailed as exc:
            self.failure = str(exc)
            raise


class SpecPlugin:
    """The pluggy plugin object standing for one :class:`PluginSpec`.

    It implements only the hooks its spec needs, so pluggy calls (and ``coral plugins list``
    shows) exactly those: :meth:`apply_patch` for a spec in ``coral_inference.patches``,
    :meth:`runtime_started` in the other groups, and :meth:`declare_options` when the spec has
    ``default_config_overrides``. Those methods are marked as hook implementations per object,
    in ``__init__``.
    """

    def __init__(self, spec: PluginSpec, record: PluginRecord) -> None:
        self.spec = spec
        self.record = record
        as_patch = record.group == "patches"
        #: Where the plugin's own settings live.
        self.config_path = f"{'patches' if as_patch else 'services'}.{spec.name}"
        hooks = ["apply_patch" if as_patch else "runtime_started"]
        if spec.default_config_overrides:
            hooks.append("declare_options")
        for name in hooks:
            setattr(self, name, _hookimpl(getattr(self, name)))

    def __repr__(self) -> str:
        return f"<PluginSpec {self.spec.name!r} from {self.record.entry_point!r}>"

    def apply_patch(self, context: PatchContext) -> PatchRecord:
        """Activate through ``context.apply`` (``patches.<name>: false`` turns it off)."""
        patch = SpecPatch(self.spec)
        result = context.apply(patch)
        if patch.failure:
            self._fail(patch.failure)
        return result

    def runtime_started(self, context: RuntimeContext) -> None:
        """Activate once the runtime is ready."""
        try:
            activate(self.spec, context.config)
        except ActivationFailed as exc:
            self._fail(str(exc))

    def declare_options(self, declare: Callable[[str, Section], None]) -> None:
        """``default_config_overrides`` as typed options under the plugin's config path."""
        section = self.spec.options_section(self.config_path)
        if section is not None:
            declare(self.config_path, section)

    def _fail(self, reason: str) -> None:
        self.record.fail(f"{reason}; fix the plugin or disable it")
        log.warning("coral-inference: %s: %s: %s", self.record.label, self.record.status, reason)


def _hookimpl(method: Callable[..., Any]) -> Callable[..., Any]:
    """A hook implementation calling the bound ``method``: pluggy reads its mark from a plain
    function, and its argument names through ``__wrapped__``."""

    @functools.wraps(method)
    def hook(*args: Any) -> Any:
        return method(*args)

    return hookspecs.hookimpl(hook)


def is_factory(loaded: object) -> bool:
    """Whether an entry point's object is a PluginSpec factory (a plain function that is not a
    hook implementation) or a PluginSpec itself."""
    if isinstance(loaded, PluginSpec):
        return True
    return inspect.isfunction(loaded) and not hasattr(loaded, _HOOKIMPL_MARK)


def plugin_from_entry_point(loaded: object, record: PluginRecord) -> object | None:
    """Return the object to register for what an entry point named.

    Anything but a PluginSpec factory is returned unchanged. A factory is called, its spec
    gated on its minimums and wrapped in a :class:`SpecPlugin`; when that fails the record says
    why (``failed`` / ``invalid`` / ``incompatible``) and None is returned.
    """
    if not is_factory(loaded):
        return loaded
    spec = loaded
    if not isinstance(spec, PluginSpec):
        try:
            spec = loaded()  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            record.fail(
                f"PluginSpec factory {record.entry_point!r} raised {type(exc).__name__}: {exc}"
            )
            return None
        if not isinstance(spec, PluginSpec):
            record.status = INVALID
            record.reason = (
                f"{record.entry_point!r} is a function returning {spec!r}: an entry point names a "
                "module of @hookimpl functions or a factory returning "
                "coral_inference.runtime.plugins.PluginSpec"
            )
            return None
    record.description = spec.description
    record.requires.extend(r for r in spec.requirements() if r not in record.requires)
    blocked = spec.incompatibility(compat.installed_inference())
    if blocked:
        record.status = INCOMPATIBLE
        record.reason = f"{blocked}; install a version of {record.name!r} that supports it"
        return None
    if spec.name != record.name:
        log.info(
            "%s: PluginSpec name %r differs from the entry point name; config uses %r",
            record.label,
            spec.name,
            record.name,
        )
    return SpecPlugin(spec, record)


def with_seed_names(state: dict[str, Any]) -> dict[str, Any]:
    """Add the original plans' ``state`` keys (name -> bool) to a runtime ``state`` dict:
    ``plugins_loaded`` (status loaded), ``patches_enabled`` (applied), ``backends_enabled``
    (registered and available)."""
    state["plugins_loaded"] = {p["name"]: p["status"] == LOADED for p in state["plugins"]}
    state["patches_enabled"] = {
        name: patch["status"] == APPLIED for name, patch in state["patches"].items()
    }
    state["backends_enabled"] = {
        name: bool(backend["available"]) for name, backend in state["backends"].items()
    }
    return state
