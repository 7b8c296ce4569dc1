"""Fixtures running a real InfluxDB 1.x (Debian's ``influxdb`` package) on 127.0.0.1.

``influxdb_url`` is a started server's base URL with database ``influxdb_database`` created;
``influxdb_server`` is the same server as an InfluxDBServer (process, config, log);
``influxdb_server_factory(port=None, fresh=False, auth_enabled=False)`` prepares further
servers (not started) for tests that control when a server comes up, that need a server
without any database (``fresh``) or one answering 401 (``auth_enabled``). Every server is stopped (killed if need be) after the test.
Tests using them are skipped, saying why, when ``influxd`` is not installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from coral_inference.testing.influxdb import InfluxDBServer, find_influxd


@pytest.fixture(scope="session")
def influxdb_database() -> str:
    return "coral_test"


@pytest.fixture(scope="session")
def influxd_binary() -> str:
    path = find_influxd()
    if path is None:
        pytest.skip("influxd not installed (apt-get install -y influxdb)")
    return path


@pytest.fixture
def influxdb_server_factory(
    influxd_binary: str, influxdb_database: str
) -> Iterator[Callable[..., InfluxDBServer]]:
    servers: list[InfluxDBServer] = []

    def prepare(
        port: int | None = None, *, fresh: bool = False, auth_enabled: bool = False
    ) -> InfluxDBServer:
        """``fresh``: no database at all (as a new install); ``auth_enabled``: answers 401."""
        server = InfluxDBServer(
            port=port,
            databases=[] if fresh else [influxdb_database],
            binary=influxd_binary,
            startup_timeout=30,
            auth_enabled=auth_enabled,
        )
        servers.append(server)
        return server

    yield prepare
    for server in servers:
        server.stop(timeout=10)


@pytest.fixture
def influxdb_server(
    influxdb_server_factory: Callable[..., InfluxDBServer],
) -> InfluxDBServer:
    return influxdb_server_factory().start()


@pytest.fixture
def influxdb_url(influxdb_server: InfluxDBServer) -> str:
    return influxdb_server.url


@pytest.fixture(scope="session")
def sample_package(tmp_path_factory: pytest.TempPathFactory):
    """The bundled CenterFace sample model package (built once per session)."""
    from coral_inference.models.sample import build_sample_package

    return build_sample_package(tmp_path_factory.mktemp("pkg") / "centerface").root


@pytest.fixture(scope="session")
def rtsp_camera_available() -> None:
    from coral_inference.testing.rtsp_camera import missing_reason

    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def rtsp_camera(rtsp_camera_available: None, tmp_path):
    """A started live RTSP camera (``.url``, ``.stop()``, ``.start()``), stopped after the test."""
    from coral_inference.testing.rtsp_camera import RTSPCamera

    camera = RTSPCamera(tmp_path)
    camera.start()
    yield camera
    camera.stop()
