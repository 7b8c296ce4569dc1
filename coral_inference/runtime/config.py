"""Configuration: one merge of defaults < file (YAML/JSON) < env (``CORAL_*``) < ``--set``.

Every value remembers where it came from (``file cfg.yaml:12``, ``env CORAL_X``, ``--set``),
and every problem is reported with the key path and that source, all at once, never as a
traceback: see :class:`ConfigError`.

Loading takes two passes over the same sources. The first checks the core's keys with the
plugin-owned maps left open; its ``plugins.*`` keys decide which plugins may load. Those plugins
are asked for their typed sections (the ``declare_options`` hook), and the second pass checks
everything against the composed schema (:func:`coral_inference.runtime.schema.compose`).
"""

from __future__ import annotations

import difflib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coral_inference.runtime.legacy_spec import env_alias
from coral_inference.runtime.options import Node, Option, Section, defaults, walk
from coral_inference.runtime.schema import PluginOptions, compose

if TYPE_CHECKING:
    import yaml

    from coral_inference.runtime.plugins import PluginManager

_log = logging.getLogger(__name__)

ENV_PREFIX = "CORAL_"
#: Environment variables that are not configuration keys.
ENV_RESERVED = {"CORAL_CONFIG"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class ConfigIssue:
    source: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class ConfigError(ValueError):
    """One or more configuration problems, each naming its source and key path."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))


@dataclass(frozen=True)
class _Value:
    value: Any
    source: str


class RuntimeDescriptor:
    """The merged, validated configuration, with the source of every value."""

    def __init__(
        self, data: dict[str, Any], sources: dict[str, str], schema: Section | None = None
    ) -> None:
        self._data = data
        self.sources = sources
        #: The schema the values were checked against (core + the plugins' sections).
        self.schema = schema if schema is not None else compose(None)
        #: The :class:`~coral_inference.runtime.plugins.PluginManager` whose plugins declared
        #: the sections, when :func:`load_config` loaded them; ``init`` runs on it.
        self.plugin_manager: PluginManager | None = None

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self._data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def section(self, path: str) -> dict[str, Any]:
        value = self.get(path, {})
        return dict(value) if isinstance(value, dict) else {}

    def to_dict(self) -> dict[str, Any]:
        copied: dict[str, Any] = json.loads(json.dumps(self._data))
        return copied

    def __repr__(self) -> str:
        return f"RuntimeDescriptor({self._data!r})"


# -- schema lookups ---------------------------------------------------------------------------


def _node_for(schema: Section, path: str) -> Node | None:
    node: Node = schema
    for part in path.split("."):
        if not isinstance(node, Section):
            return None
        child = node.child(part)
        if child is None:
            return None
        node = child
    return node


def _unknown(section: Section, key: str) -> str:
    close = difflib.get_close_matches(key, list(section.keys), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(section.keys) or "none"
    return f"unknown key {key!r}{hint} (known here: {known})"


# -- coercion ---------------------------------------------------------------------------------


def _coerce(option: Option, value: Any, *, from_text: bool) -> Any:
    """Return the typed value or raise ValueError with a message for the user."""
    if from_text and isinstance(value, str):
        value = _parse_text(option, value)
    kind = option.kind
    if kind == "any":
        return value
    if value is None:
        if option.nullable:
            return None
        raise ValueError(f"must not be null (expected {option.kind})")
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
    elif kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {value!r}")
    elif kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {value!r}")
        value = float(value)
    elif kind in ("str", "path"):
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
    elif kind == "list[str]":
        if isinstance(value, str):
            value = [value]  # `providers: auto` reads as the one-item list
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
    elif kind == "mapping":
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping, got {value!r}")
    if option.choices and value not in option.choices:
        raise ValueError(f"expected one of {', '.join(option.choices)}, got {value!r}")
    if option.minimum is not None and value < option.minimum:
        raise ValueError(f"must be >= {option.minimum:g}, got {value!r}")
    if option.maximum is not None and value > option.maximum:
        raise ValueError(f"must be <= {option.maximum:g}, got {value!r}")
    return value


def _parse_text(option: Option, text: str) -> Any:
    """Interpret an env / ``--set`` string for ``option``."""
    stripped = text.strip()
    if stripped.lower() in ("null", "none", "~") or (stripped == "" and option.nullable):
        return None
    if option.kind == "bool":
        lowered = stripped.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"expected one of 1/0/true/false/yes/no/on/off, got {text!r}")
    if option.kind == "list[str]":
        if stripped.startswith("["):
            return _yaml_scalar(stripped)
        return [item.strip() for item in stripped.split(",") if item.strip()]
    if option.kind in ("str", "path"):
        return text
    return _yaml_scalar(stripped)


def _switch_text(text: str) -> bool | None:
    """``true``/``false`` words for a switch section given as one env / ``--set`` value."""
    lowered = text.strip().lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def _yaml_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"cannot parse {text!r}: {exc}") from exc


# -- sources ----------------------------------------------------------------------------------


def _flatten(
    data: Any,
    section: Section,
    prefix: str,
    source: str,
    lines: Mapping[str, int],
    out: dict[str, _Value],
    issues: list[ConfigIssue],
) -> None:
    here = f"{source}:{lines[prefix.rstrip('.')]}" if prefix.rstrip(".") in lines else source
    if section.switch and isinstance(data, bool):
        data = {"enabled": data}
    if not isinstance(data, dict):
        issues.append(ConfigIssue(here, prefix.rstrip("."), f"expected a mapping, got {data!r}"))
        return
    for key, value in data.items():
        path = f"{prefix}{key}"
        where = f"{source}:{lines[path]}" if path in lines else source
        key = str(key)
        node = section.child(key)
        if node is None:
            issues.append(ConfigIssue(where, path, _unknown(section, key)))
        elif isinstance(node, Section):
            _flatten(value, node, f"{path}.", source, lines, out, issues)
        else:
            try:
                out[path] = _Value(_coerce(node, value, from_text=False), where)
            except ValueError as exc:
                issues.append(ConfigIssue(where, path, str(exc)))


def _yaml_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    """Map each dotted key path of a composed YAML document to its 1-based line."""
    import yaml

    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}{key_node.value}"
            lines[path] = key_node.start_mark.line + 1
            lines.update(_yaml_lines(value_node, f"{path}."))
    return lines


def read_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, int]]:
    """Parse a YAML or JSON config file; return its data and each key's line number."""
    import yaml

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(str(file), "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(str(file), "", f"cannot read: {exc}")]) from None
    if file.suffix.lower() == ".json":
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                [ConfigIssue(f"{file}:{exc.lineno}", "", f"invalid JSON: {exc.msg}")]
            ) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else {}
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = " ".join(filter(None, [exc.context, exc.problem]))
        raise ConfigError([ConfigIssue(f"{file}{line}", "", f"invalid YAML: {problem}")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(str(file), "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            [
                ConfigIssue(
                    str(file), "", "the top level must be a mapping of keys (e.g. platform: cpu)"
                )
            ]
        )
    return data, _yaml_lines(node) if node is not None else {}


def _env_path(name: str) -> str:
    """The key path a ``CORAL_*`` variable sets: ``CORAL_A__B`` -> ``a.b``, or the original
    plans' name for it (:func:`~coral_inference.runtime.legacy_spec.env_alias`)."""
    alias = env_alias(name)
    if alias is not None:
        return alias
    return ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))


def _env_items(env: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """(key path, text, source) for every ``CORAL_*`` variable."""
    return [
        (_env_path(name), env[name], f"env {name}")
        for name in sorted(env)
        if name.startswith(ENV_PREFIX) and name not in ENV_RESERVED
    ]


def _set_items(items: Iterable[str], issues: list[ConfigIssue]) -> list[tuple[str, str, str]]:
    """(key path, text, source) for every ``--set KEY=VALUE`` (VALUE is YAML)."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            issues.append(
                ConfigIssue("--set", item, "expected KEY=VALUE, e.g. patches.video_sink=false")
            )
            continue
        out.append((key.strip(), value, f"--set {key.strip()}"))
    return out


def _assign(
    schema: Section,
    path: str,
    raw: Any,
    source: str,
    out: dict[str, _Value],
    issues: list[ConfigIssue],
    *,
    from_text: bool,
) -> None:
    node = _node_for(schema, path)
    if node is None:
        parent_path, _, key = path.rpartition(".")
        parent = _node_for(schema, parent_path) if parent_path else schema
        message = _unknown(parent, key) if isinstance(parent, Section) else f"unknown key {path!r}"
        issues.append(ConfigIssue(source, path, message))
        return
    if isinstance(node, Section):
        value: Any = raw
        if from_text and isinstance(raw, str):
            switched = _switch_text(raw) if node.switch else None
            try:
                value = switched if switched is not None else _yaml_scalar(raw)
            except ValueError as exc:
                issues.append(ConfigIssue(source, path, str(exc)))
                return
        _flatten(value, node, f"{path}.", source, {}, out, issues)
        return
    try:
        out[path] = _Value(_coerce(node, raw, from_text=from_text), source)
    except ValueError as exc:
        issues.append(ConfigIssue(source, path, str(exc)))


# -- the one merge ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sources:
    """The raw layers of one load, read once and checked against each pass's schema."""

    trees: list[tuple[Any, str, Mapping[str, int]]]
    items: list[tuple[str, str, str]]


def _read_sources(
    file: str | os.PathLike[str] | None,
    data: Mapping[str, Any] | None,
    env: Mapping[str, str],
    overrides: Iterable[str],
    issues: list[ConfigIssue],
) -> _Sources:
    trees: list[tuple[Any, str, Mapping[str, int]]] = []
    if file is not None:
        content, lines = read_file(file)
        trees.append((content, f"file {file}", lines))
    if data is not None:
        trees.append((dict(data), "init(config)", {}))
    return _Sources(trees, _env_items(env) + _set_items(overrides, issues))


def _says_strict(sources: _Sources) -> bool:
    """The ``strict`` key as the file/data and ``--set`` give it (env aside: later ones win)."""
    value = False
    for content, _, _ in sources.trees:
        if isinstance(content, Mapping) and "strict" in content:
            value = content["strict"] is True
    for path, text, source in sources.items:
        if path == "strict" and source.startswith("--set"):
            value = _switch_text(text) is True
    return value


def _foreign_env(sources: _Sources, schema: Section, *, strict: bool, warn: bool) -> _Sources:
    """``sources`` without the ``CORAL_*`` variables that name no key: the prefix is not ours
    alone (another tool's variable must not break every command). Each is a warning, or left in
    to be reported as an unknown key when ``strict``."""
    if strict:
        return sources
    kept = []
    for path, text, source in sources.items:
        if source.startswith("env ") and _node_for(schema, path) is None:
            if warn:
                _log.warning(
                    "ignoring environment variable %s: not a coral-inference config key "
                    "(an error with --strict / strict: true)",
                    source.removeprefix("env "),
                )
            continue
        kept.append((path, text, source))
    return _Sources(sources.trees, kept)


def _check(sources: _Sources, schema: Section, issues: list[ConfigIssue]) -> RuntimeDescriptor:
    layers: list[dict[str, _Value]] = []
    base: dict[str, _Value] = {}
    _flatten(defaults(schema), schema, "", "default", {}, base, issues)
    layers.append(base)
    for content, source, lines in sources.trees:
        layer: dict[str, _Value] = {}
        _flatten(content, schema, "", source, lines, layer, issues)
        layers.append(layer)
    for path, text, source in sources.items:
        layer = {}
        _assign(schema, path, text, source, layer, issues, from_text=True)
        layers.append(layer)
    descriptor = _merge(layers, schema)
    if not issues:
        issues.extend(_cross_field(descriptor))
    return descriptor


def _cross_field(descriptor: RuntimeDescriptor) -> list[ConfigIssue]:
    """Run every section's ``checks`` on the merged values."""
    found = []
    sections = [("", descriptor.schema)] + [
        (f"{path}.", node) for path, node in walk(descriptor.schema) if isinstance(node, Section)
    ]
    for prefix, section in sections:
        for check in section.checks:
            values = descriptor.section(prefix.rstrip(".")) if prefix else descriptor.to_dict()
            for key, message in check(values):
                path = f"{prefix}{key}"
                found.append(ConfigIssue(_blame(descriptor, prefix, path), path, message))
    return found


def _blame(descriptor: RuntimeDescriptor, prefix: str, path: str) -> str:
    """The source to name for a cross-field problem at ``path``: its own when it was set,
    else those of the section's keys that were set (what made the default wrong)."""
    own = descriptor.sources.get(path, "default")
    if own != "default":
        return own
    set_here = sorted(
        {s for p, s in descriptor.sources.items() if p.startswith(prefix) and s != "default"}
    )
    return ", ".join(set_here) or own


def load_config(
    file: str | os.PathLike[str] | None = None,
    *,
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | None = None,
    plugins: PluginManager | PluginOptions | bool = True,
    strict: bool | None = None,
) -> RuntimeDescriptor:
    """Merge defaults < ``file`` (or ``data``) < ``env`` (default ``os.environ``; pass ``{}`` to
    ignore it) < ``overrides`` (``KEY=VALUE``). Raises :class:`ConfigError` listing every
    problem. A ``CORAL_*`` variable naming no key is a warning, or a problem when ``strict``
    (default: the ``strict`` key of the file / ``--set``).

    ``plugins``: ``True`` loads the plugins the configuration allows and asks them for their
    sections (see the module docstring); a ``PluginManager`` that loaded what this configuration
    selects is asked instead, without loading anything again (one that does not is replaced);
    a :class:`PluginOptions` is used as it is; ``False`` checks only the core's keys and leaves
    plugin-owned sections open (for commands that only need ``plugins.*``). The manager asked
    is the returned descriptor's ``plugin_manager``.
    """
    env = os.environ if env is None else env
    if file is None and env.get("CORAL_CONFIG"):
        file = env["CORAL_CONFIG"]
    read: list[ConfigIssue] = []
    sources = _read_sources(file, data, env, overrides, read)
    strict = _says_strict(sources) if strict is None else strict
    core = compose(None)
    issues = list(read)
    first = _check(_foreign_env(sources, core, strict=strict, warn=plugins is False), core, issues)
    if issues and (plugins is False or _selection_unknown(issues)):
        raise ConfigError(issues)
    if plugins is False:
        return first
    # Errors in core keys do not stop the second pass: which plugins load is known (the
    # plugins.* keys are fine), so their sections are checked too and every problem is
    # reported at once; the full schema checks the core keys again, so the core errors are
    # found there a second time (kept once).
    manager = None
    if not isinstance(plugins, PluginOptions):
        from coral_inference.runtime.plugins import PluginManager

        manager = plugins if isinstance(plugins, PluginManager) else None
        if manager is None or not manager.serves(first):
            manager = PluginManager.from_config(first)
        plugins = manager.options()
    schema = compose(plugins)
    second = list(read)
    final = _check(_foreign_env(sources, schema, strict=strict, warn=True), schema, second)
    if issues or second:
        raise ConfigError(dict.fromkeys([*second, *issues]))
    final.plugin_manager = manager
    return final


def _selection_unknown(issues: Iterable[ConfigIssue]) -> bool:
    """Whether a problem touches what selects the plugins (``plugins.*``, ``strict``): then
    their sections cannot be checked until it is fixed."""
    return any(i.path == "strict" or i.path.split(".")[0] == "plugins" for i in issues)


def check_section(path: str, section: Section, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` checked against one declared ``section`` and completed with its defaults.

    For code handed a section's mapping outside a loaded configuration (a backend's
    ``create_session`` called directly): the same checks as :func:`load_config`, the same
    :class:`ConfigError` naming ``path.key``.
    """
    issues: list[ConfigIssue] = []
    checked: dict[str, _Value] = {}
    _flatten(dict(values), section, f"{path}.", path, {}, checked, issues)
    merged = defaults(section)
    for key, item in checked.items():
        node = merged
        *parents, leaf = key[len(path) + 1 :].split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = item.value
    if not issues:
        for check in section.checks:
            issues += [ConfigIssue(path, f"{path}.{k}", m) for k, m in check(merged)]
    if issues:
        raise ConfigError(issues)
    return merged


def _merge(layers: list[dict[str, _Value]], schema: Section) -> RuntimeDescriptor:
    merged: dict[str, _Value] = {}
    for layer in layers:
        merged.update(layer)
    data: dict[str, Any] = defaults(schema)
    for path, item in merged.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = item.value
    sources = {path: item.source for path, item in sorted(merged.items())}
    return RuntimeDescriptor(data, sources, schema)


# -- template ---------------------------------------------------------------------------------


def render_template(schema: Section | None = None) -> str:
    """A commented YAML file with every key at its default (``coral config init``); ``schema``
    defaults to the core's plus the installed plugins' sections."""
    if schema is None:
        schema = load_config(env={}).schema
    out = [
        "# coral-inference configuration. Every key is optional; shown at its default.",
        "# Precedence: this file < env CORAL_SECTION__KEY=value < coral ... --set KEY=VALUE",
        "",
    ]
    _render(schema, 0, out)
    return "\n".join(out) + "\n"


def _render(section: Section, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    for key, node in section.keys.items():
        if isinstance(node, Section):
            out.append(f"{pad}# {node.help}")
            if node.keys:
                out.append(f"{pad}{key}:")
                _render(node, depth + 1, out)
            else:
                out.append(f"{pad}{key}: {{}}")
        else:
            value = json.dumps(node.default)
            choices = f" ({' | '.join(map(str, node.choices))})" if node.choices else ""
            out.append(f"{pad}{key}: {value}  # {node.help}{choices}")


def reference_rows(schema: Section | None = None) -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every leaf and open map: the README reference
    (``schema`` defaults to the core's, with ``patches.<name>`` for the built-in patches)."""
    if schema is None:
        schema = compose(PluginOptions())
    rows = []
    for path, node in walk(schema):
        if isinstance(node, Option):
            rows.append((path, node.kind, json.dumps(node.default), node.help))
        elif node.values is not None:
            kind = "mapping" if isinstance(node.values, Section) else node.values.kind
            rows.append((f"{path}.<name>", kind, "", node.help))
    return rows
