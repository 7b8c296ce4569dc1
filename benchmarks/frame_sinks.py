"""Cost of the ``register_frame_sinks`` hook: ``coral run --demo`` with one no-op frame sink
registered against none, in interleaved rounds (a shared machine moves every round's fps; the
interleaving spreads that over both arms).

Run: ``python benchmarks/frame_sinks.py [--frames 150] [--rounds 7]``.
Target: no-op sink / none >= 0.95 in fps; the child CPU ms per frame is printed too.

The no-op sink is a real plugin: a module and a ``.dist-info`` with its entry point, put on
``PYTHONPATH`` for the ``with`` rounds only, found by the same discovery as any plugin.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import OFFLINE_ENV, median  # noqa: E402

NOOP = '''"""A frame sink that does nothing (benchmarks/frame_sinks.py)."""
from coral_inference import hookimpl


class Noop:
    def on_frame(self, result):
        pass

    def close(self):
        pass


@hookimpl
def register_frame_sinks(register):
    register(lambda pipeline: Noop())
'''


def noop_plugin(root: Path) -> Path:
    """A directory holding the no-op plugin module and its distribution metadata."""
    (root / "coral_bench_noop_sink.py").write_text(NOOP)
    info = root / "coral_bench_noop_sink-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: coral-bench-noop-sink\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[coral_inference.patches]\nbench_noop_sink = coral_bench_noop_sink\n"
    )
    return root


def one_run(out: Path, frames: int, plugin_dir: Path | None) -> tuple[float, float, dict]:
    """(fps, child CPU ms per frame, frame_sinks counts) of one ``coral run --demo``."""
    only = "[onnx,local_models,frame_sinks" + (",bench_noop_sink]" if plugin_dir else "]")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORAL_")}
    env.update(OFFLINE_ENV)
    if plugin_dir is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_dir), env.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        [sys.executable, "-m", "coral_inference.cli", "run", "--demo", "--json"]
        + ["--max-frames", str(frames), "--output-dir", str(out), "--set", f"plugins.only={only}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"coral run failed:\n{result.stderr[-3000:]}")
    summary = json.loads(result.stdout)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return summary["fps"], 1000 * cpu / summary["frames"], summary["frame_sinks"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="coral-bench-sinks-") as tmp:
        out = Path(tmp) / "out"
        plugin_dir = noop_plugin(Path(tmp))
        one_run(out, 10, None)  # builds the demo model and video once
        fps: dict[str, list[float]] = {"none": [], "noop": []}
        cpu: dict[str, list[float]] = {"none": [], "noop": []}
        for round_ in range(args.rounds):
            order = ("none", "noop") if round_ % 2 == 0 else ("noop", "none")
            for arm in order:
                value, ms, counts = one_run(out, args.frames, plugin_dir if arm == "noop" else None)
                if arm == "noop":
                    assert counts["bench_noop_sink"]["frames"] == args.frames, counts
                fps[arm].append(value)
                cpu[arm].append(ms)
                print(f"round {round_ + 1} {arm:5s} fps {value:6.2f}  cpu {ms:6.2f} ms/frame")
    none, noop = median(fps["none"]), median(fps["noop"])
    print(
        f"median fps: none {none:.2f}, no-op sink {noop:.2f}: ratio {noop / none:.3f}; "
        f"median child CPU ms/frame: none {median(cpu['none']):.2f}, "
        f"no-op sink {median(cpu['noop']):.2f}"
    )


if __name__ == "__main__":
    main()
