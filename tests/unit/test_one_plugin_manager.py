"""One plugin manager per command: the configuration's first pass builds it, ``load_config``
asks it for the plugins' sections and ``init`` runs on it; plugins are discovered once."""

from __future__ import annotations

import inspect

import pytest

import coral_inference
from coral_inference.runtime import hookspecs
from coral_inference.runtime.config import load_config
from coral_inference.runtime.plugins import PluginManager

pytestmark = pytest.mark.core


@pytest.fixture
def discoveries(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts PluginManager.discover calls (the entry-point walk, imports and registration)."""
    calls: list[int] = []
    original = PluginManager.discover

    def counted(self: PluginManager, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PluginManager, "discover", counted)
    yield calls
    coral_inference.shutdown()


def test_load_config_then_init_discovers_once(discoveries: list[int]) -> None:
    config = load_config(data={"plugins": {"disabled": ["fixture_hook_raises"]}}, env={})
    assert config.plugin_manager is not None and len(discoveries) == 1
    context = coral_inference.init(config)
    assert context.plugin_manager is config.plugin_manager
    assert len(discoveries) == 1


def test_a_later_load_reuses_the_manager_unless_the_selection_changed(
    discoveries: list[int],
) -> None:
    first = load_config(data={}, env={})
    again = load_config(data={}, overrides=["strict=false"], env={}, plugins=first.plugin_manager)
    assert again.plugin_manager is first.plugin_manager and len(discoveries) == 1
    other = load_config(
        data={}, overrides=["plugins.disabled=[video_sink]"], env={}, plugins=first.plugin_manager
    )
    assert other.plugin_manager is not first.plugin_manager and len(discoveries) == 2
    assert other.plugin_manager.records["video_sink"].status == "disabled"


def test_a_manager_runs_one_runtime(discoveries: list[int]) -> None:
    config = load_config(data={}, env={})
    first = coral_inference.init(config)
    second = coral_inference.init(config)  # the same descriptor: plugins loaded afresh
    assert second.plugin_manager is not first.plugin_manager
    assert len(discoveries) == 2


#: Hooks whose facade passes each argument by its name (PluginManager.register_frame_sinks).
BY_NAME = {"register_frame_sinks": ["register", "config"]}


def test_every_hookspec_takes_exactly_one_argument() -> None:
    """The typed facade calls an implementation with one value for each name it asks for
    (``impl.function(*[value for _ in impl.argnames])``): that holds only for one-argument
    hooks; the few others map each name to its value (listed in BY_NAME)."""
    specs = {
        name: function
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, f"{hookspecs.PROJECT_NAME}_spec")
    }
    assert len(specs) >= 8, sorted(specs)
    for name, function in specs.items():
        parameters = list(inspect.signature(function).parameters)
        assert parameters == BY_NAME.get(name, parameters[:1]), name
