"""Cold start of ``coral plugins list --json`` with 20 extra plugins installed.

Run: ``python benchmarks/plugins_list.py`` (in an environment where coral-inference is installed).
Prints the median wall time of each command over N runs and the ratio against
``python -c "import importlib.metadata"`` measured in the same run. Target: <= 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.5
#: What any CLI built on the project's mandated libraries pays before doing anything.
FLOOR = "import importlib.metadata, click, pluggy, packaging.requirements"


def make_plugins(root: Path, count: int) -> None:
    """Install ``count`` small plugin distributions as pip lays them out (module + dist-info)."""
    groups = ["backends", "patches", "workflows"]
    for i in range(count):
        name = f"coral_bench_plugin_{i:02d}"
        (root / f"{name}.py").write_text(
            "from coral_inference import hookimpl\n\n\n"
            "@hookimpl\ndef register_workflow_block(register):\n    pass\n"
        )
        info = root / f"coral_bench_plugin_{i:02d}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: coral-bench-plugin-{i:02d}\nVersion: 1.0\n"
            "Requires-Dist: coral-inference>=0.1\nRequires-Dist: inference-cpu>=0.50; extra == 'x'\n"
        )
        (info / "entry_points.txt").write_text(
            f"[coral_inference.{groups[i % 3]}]\nbench_{i:02d} = {name}\n"
        )
        (info / "RECORD").write_text("")


def seconds(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def interleaved_medians(
    commands: dict[str, list[str]], env: dict[str, str], runs: int
) -> dict[str, float]:
    """Median wall time of each command over ``runs`` rounds; each round runs every command
    once, in turn, so load that comes and goes hits them alike."""
    for cmd in commands.values():
        subprocess.run(cmd, env=env, check=True, capture_output=True)  # warm caches, .pyc files
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            samples[name].append(seconds(cmd, env))
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--plugins", type=int, default=20)
    args = parser.parse_args()
    coral = shutil.which("coral", path=str(Path(sys.executable).parent)) or shutil.which("coral")
    if coral is None:
        sys.exit("the coral command is not installed in this environment")
    with tempfile.TemporaryDirectory() as tmp:
        make_plugins(Path(tmp), args.plugins)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CORAL_")}
        # As on a user's machine: byte-code caches written and used (this sandbox sets
        # PYTHONDONTWRITEBYTECODE, which makes every run compile every module again).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPATH"] = tmp + os.pathsep + env.get("PYTHONPATH", "")
        listed = json.loads(
            subprocess.run(
                [coral, "plugins", "list", "--json"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        )
        bench = [r for r in listed if r["name"].startswith("bench_")]
        assert len(bench) == args.plugins and all(r["status"] == "loaded" for r in bench), bench
        medians = interleaved_medians(
            {
                "baseline": [sys.executable, "-c", "import importlib.metadata"],
                "floor": [sys.executable, "-c", FLOOR],
                "ours": [coral, "plugins", "list", "--json"],
            },
            env,
            args.runs,
        )
        baseline, floor, ours = medians["baseline"], medians["floor"], medians["ours"]
    ratio = ours / baseline
    print(f"plugins discovered: {len(listed)} ({args.plugins} benchmark plugins)")
    print(
        f"baseline  python -c 'import importlib.metadata': {baseline * 1000:7.1f} ms (median of {args.runs} interleaved rounds)"
    )
    print(
        f"coral plugins list --json:                       {ours * 1000:7.1f} ms (median of {args.runs})"
    )
    print(
        f"floor     importing the libraries it must use:   {floor * 1000:7.1f} ms "
        f"({floor / baseline:.2f}x baseline; ours is {ours / floor:.2f}x this floor)"
    )
    print(
        f"ratio: {ratio:.2f}x (target <= {TARGET_RATIO}x) {'OK' if ratio <= TARGET_RATIO else 'ABOVE TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
