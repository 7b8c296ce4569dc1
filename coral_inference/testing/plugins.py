"""Plugins for one test: an object registered, or a project installed, under a temporary
``sys.path`` entry that the runtime discovers through its real entry-point scan.

Both go through the same discovery, gating and listing as an installed distribution: the
object is named by an ``entry_points.txt`` in a generated ``.dist-info`` directory, the
project is installed by ``pip install --target``. :meth:`TemporaryPlugins.close` removes both.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import types
from collections.abc import Iterable
from pathlib import Path

GROUP_PREFIX = "coral_inference."
GROUPS = ("backends", "patches", "workflows")


class TemporaryPlugins:
    """Plugins visible to :func:`coral_inference.init` until :meth:`close`."""

    def __init__(self, root: Path) -> None:
        self.site = Path(root) / "site-packages"
        self.site.mkdir(parents=True, exist_ok=True)
        self._modules: list[str] = []
        sys.path.insert(0, str(self.site))
        importlib.invalidate_caches()

    def register(
        self,
        plugin: object,
        name: str,
        *,
        group: str = "patches",
        version: str = "0.0.0",
        requires: Iterable[str] = (),
    ) -> str:
        """Make ``plugin`` (a module, or any object with ``@hookimpl`` methods, or a PluginSpec
        factory) the entry point ``name`` in ``coral_inference.<group>`` of a distribution
        ``coral-test-<name>`` whose ``Requires-Dist`` is ``requires``. Returns ``name``."""
        if group not in GROUPS:
            raise ValueError(f"group {group!r}: use one of {', '.join(GROUPS)}")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"plugin name {name!r}: use letters, digits, _ . -")
        if isinstance(plugin, types.ModuleType) and sys.modules.get(plugin.__name__) is plugin:
            target = plugin.__name__
        else:
            module_name = f"_coral_testing_plugin_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"
            holder = types.ModuleType(module_name, f"holds the test plugin {name!r}")
            holder.plugin = plugin  # type: ignore[attr-defined]
            sys.modules[module_name] = holder
            self._modules.append(module_name)
            target = f"{module_name}:plugin"
        dist = f"coral-test-{name}"
        info = self.site / f"{re.sub(r'[-.]', '_', dist)}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        metadata = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
        metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
        (info / "METADATA").write_text("\n".join(metadata) + "\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(
            f"[{GROUP_PREFIX}{group}]\n{name} = {target}\n", encoding="utf-8"
        )
        importlib.invalidate_caches()
        return name

    def install(self, project: str | Path, *, timeout: float = 300) -> str:
        """``pip install --no-deps`` the project at ``project`` here; return pip's output.

        Its dependencies must already be installed (coral-inference is, by definition).
        Raises RuntimeError with pip's output when the install fails.
        """
        command = [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet"]
        command += ["--disable-pip-version-check", "--target", str(self.site), str(project)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"pip install {project} failed:\n{result.stdout}{result.stderr}")
        importlib.invalidate_caches()
        return result.stdout

    def close(self) -> None:
        """Forget every plugin: the path entry, the holder modules, modules imported from here."""
        site = str(self.site)
        while site in sys.path:
            sys.path.remove(site)
        for module_name in self._modules:
            sys.modules.pop(module_name, None)
        for module_name, module in list(sys.modules.items()):
            if (getattr(module, "__file__", None) or "").startswith(site):
                del sys.modules[module_name]
        importlib.invalidate_caches()
