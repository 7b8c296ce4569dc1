"""``coral serve`` restarts: what each pipeline's ``restart`` policy runs again.

Not marked ``integration``: the policy and the store are coral's own, the same on every
inference line, so the tox env ``inference054`` runs it and the newest line's env does not pay
for it again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from serve_process import ServeProcess, serve_assets, serve_config

pytest.importorskip("inference")
pytest.importorskip("aiortc")

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return serve_assets(tmp_path_factory.mktemp("serve-restart"), frames=30)


def test_a_restart_runs_again_what_its_policy_says(assets: dict[str, Path], tmp_path: Path) -> None:
    """A file that ran to its end stays ended (on-failure, the default for files); ``always``
    runs it again; ``never`` is listed, not started."""
    from coral_inference.models.sample import generate_sample_video

    short = tmp_path / "short.mp4"
    generate_sample_video(short, frames=30, size=(320, 180), fps=25)
    config = serve_config(tmp_path, assets["package"])
    server = ServeProcess("--port", "0", "-c", str(config), cwd=tmp_path)
    ids: dict[str, str] = {}
    try:
        for restart in ("on-failure", "always", "never", None):
            body = {"model": "faces", "source": str(short), "name": f"r-{restart}"}
            if restart:
                body["restart"] = restart
            status, reply = server.json("POST", "/coral/pipelines", body)
            assert status == 201, reply
            ids[str(restart)] = reply["pipeline_id"]
        for pipeline_id in ids.values():
            server.wait_for(lambda p=pipeline_id: server.pipeline(p)["status"] == "ended", 120)
        assert server.pipeline(ids["None"])["restart"] == "on-failure"
        status, reply = server.json(
            "POST", "/coral/pipelines", {"model": "faces", "source": "x.mp4", "restart": "often"}
        )
        assert status == 400 and "restart" in reply["error"]
        assert server.terminate()[0] == 0
    finally:
        server.stop()

    def segments(pipeline_id: str) -> list[Path]:
        return sorted((tmp_path / "recordings" / pipeline_id).rglob("*.mp4"))

    before = {key: segments(pipeline_id) for key, pipeline_id in ids.items()}
    again = ServeProcess("--port", "0", "-c", str(config), cwd=tmp_path)
    try:
        # "always" ran the file again: a second recording; then it ended again
        again.wait_for(lambda: len(segments(ids["always"])) > len(before["always"]), 120)
        again.wait_for(lambda: again.pipeline(ids["always"])["status"] == "ended", 120)
        listed = {
            p["pipeline_id"]: p for p in again.json("GET", "/coral/pipelines")[1]["pipelines"]
        }
        assert listed[ids["on-failure"]]["status"] == "ended"
        assert listed[ids["None"]]["status"] == "ended"
        assert listed[ids["never"]]["status"] == "ended"  # as left, not started
        for key in ("on-failure", "None", "never"):
            assert segments(ids[key]) == before[key], key
        assert again.terminate()[0] == 0
    finally:
        again.stop()
