"""Configuration: one merge of defaults < file (YAML/JSON) < env (``CORAL_*``) < ``--set``.

Every value remembers where it came from (``file cfg.yaml:12``, ``env CORAL_X``, ``--set``),
and every problem is reported with the key path and that source, all at once, never as a
traceback: see :class:`ConfigError`.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coral_inference.runtime.options import Option, Section
from coral_inference.runtime.schema import SCHEMA, defaults, walk

if TYPE_CHECKING:
    import yaml

ENV_PREFIX = "CORAL_"
#: Environment variables that are not configuration keys.
ENV_RESERVED = {"CORAL_CONFIG"}
#: The original plans' variable names, kept working.
ENV_ALIASES = {
    "CORAL_RUNTIME_PLATFORM": "platform",
    "CORAL_BACKEND_MODULES": "backends.modules",
    "CORAL_BACKENDS": "backends.modules",
}
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

    def __init__(self, data: dict[str, Any], sources: dict[str, str]) -> None:
        self._data = data
        self.sources = sources

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
        return json.loads(json.dumps(self._data))

    def __repr__(self) -> str:
        return f"RuntimeDescriptor({self._data!r})"


# -- schema lookups ---------------------------------------------------------------------------


def _node_for(path: str) -> Section | Option | None:
    node: Section | Option = SCHEMA
    for part in path.split("."):
        if not isinstance(node, Section):
            return None
        child = node.keys.get(part) or node.values
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
    if value is None:
        if option.nullable:
            return None
        raise ValueError(f"must not be null (expected {option.kind})")
    kind = option.kind
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
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {value!r}")
    elif kind == "mapping":
        if not isinstance(value, dict):
            raise ValueError(f"expected a mapping, got {value!r}")
    if option.choices and value not in option.choices:
        raise ValueError(f"expected one of {', '.join(option.choices)}, got {value!r}")
    if option.minimum is not None and value < option.minimum:
        raise ValueError(f"must be >= {option.minimum:g}, got {value!r}")
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
    if not isinstance(data, dict):
        issues.append(ConfigIssue(here, prefix.rstrip("."), f"expected a mapping, got {data!r}"))
        return
    for key, value in data.items():
        path = f"{prefix}{key}"
        where = f"{source}:{lines[path]}" if path in lines else source
        key = str(key)
        node = section.keys.get(key) or section.values
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


def _env_path(name: str) -> str | None:
    if name in ENV_ALIASES:
        return ENV_ALIASES[name]
    if name.startswith("CORAL_ENABLE_"):
        return f"patches.{name[len('CORAL_ENABLE_') :].lower()}"
    return ".".join(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))


def _from_env(env: Mapping[str, str], out: dict[str, _Value], issues: list[ConfigIssue]) -> None:
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in ENV_RESERVED:
            continue
        path = _env_path(name)
        _assign(path, env[name], f"env {name}", out, issues, from_text=True)


def parse_set(items: Iterable[str], out: dict[str, _Value], issues: list[ConfigIssue]) -> None:
    """Apply ``--set KEY=VALUE`` items (VALUE parsed as YAML, then type-checked)."""
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            issues.append(
                ConfigIssue("--set", item, "expected KEY=VALUE, e.g. patches.video_sink=false")
            )
            continue
        _assign(key.strip(), value, f"--set {key.strip()}", out, issues, from_text=True)


def _assign(
    path: str,
    raw: Any,
    source: str,
    out: dict[str, _Value],
    issues: list[ConfigIssue],
    *,
    from_text: bool,
) -> None:
    node = _node_for(path)
    if node is None:
        parent_path, _, key = path.rpartition(".")
        parent = _node_for(parent_path) if parent_path else SCHEMA
        message = _unknown(parent, key) if isinstance(parent, Section) else f"unknown key {path!r}"
        issues.append(ConfigIssue(source, path, message))
        return
    if isinstance(node, Section):
        value = _yaml_scalar(raw) if from_text and isinstance(raw, str) else raw
        _flatten(value, node, f"{path}.", source, {}, out, issues)
        return
    try:
        out[path] = _Value(_coerce(node, raw, from_text=from_text), source)
    except ValueError as exc:
        issues.append(ConfigIssue(source, path, str(exc)))


# -- the one merge ----------------------------------------------------------------------------


def load_config(
    file: str | os.PathLike[str] | None = None,
    *,
    overrides: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    data: Mapping[str, Any] | None = None,
) -> RuntimeDescriptor:
    """Merge defaults < ``file`` (or ``data``) < ``env`` (default ``os.environ``; pass ``{}`` to
    ignore it) < ``overrides`` (``KEY=VALUE``). Raises :class:`ConfigError` listing every
    problem."""
    env = os.environ if env is None else env
    if file is None and env.get("CORAL_CONFIG"):
        file = env["CORAL_CONFIG"]
    issues: list[ConfigIssue] = []
    layers: list[dict[str, _Value]] = []
    base: dict[str, _Value] = {}
    _flatten(defaults(), SCHEMA, "", "default", {}, base, issues)
    layers.append(base)
    if file is not None:
        content, lines = read_file(file)
        layer: dict[str, _Value] = {}
        _flatten(content, SCHEMA, "", f"file {file}", lines, layer, issues)
        layers.append(layer)
    if data is not None:
        layer = {}
        _flatten(dict(data), SCHEMA, "", "init(config)", {}, layer, issues)
        layers.append(layer)
    env_layer: dict[str, _Value] = {}
    _from_env(env, env_layer, issues)
    layers.append(env_layer)
    cli_layer: dict[str, _Value] = {}
    parse_set(overrides, cli_layer, issues)
    layers.append(cli_layer)
    if issues:
        raise ConfigError(issues)
    return _merge(layers)


def _merge(layers: list[dict[str, _Value]]) -> RuntimeDescriptor:
    merged: dict[str, _Value] = {}
    for layer in layers:
        merged.update(layer)
    data: dict[str, Any] = defaults()
    for path, item in merged.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = item.value
    return RuntimeDescriptor(data, {path: item.source for path, item in sorted(merged.items())})


# -- template ---------------------------------------------------------------------------------


def render_template() -> str:
    """A commented YAML file with every key at its default (``coral config init``)."""
    out = [
        "# coral-inference configuration. Every key is optional; shown at its default.",
        "# Precedence: this file < env CORAL_SECTION__KEY=value < coral ... --set KEY=VALUE",
        "",
    ]
    _render(SCHEMA, 0, out)
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
            choices = f" ({' | '.join(node.choices)})" if node.choices else ""
            out.append(f"{pad}{key}: {value}  # {node.help}{choices}")


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every leaf and open map: the README reference."""
    rows = []
    for path, node in walk():
        if isinstance(node, Option):
            rows.append((path, node.kind, json.dumps(node.default), node.help))
        elif node.values is not None:
            rows.append((f"{path}.<name>", node.values.kind, "", node.help))
    return rows
