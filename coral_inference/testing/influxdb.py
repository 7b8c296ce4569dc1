"""A throwaway InfluxDB 1.x server (``influxd``) on 127.0.0.1 for tests and benchmarks.

Everything the server writes (meta, data, WAL, log) lives in a private temporary directory,
every listener is bound to 127.0.0.1 on a free port, usage reporting is off, and the HTTP
helpers here bypass any configured proxy, so no traffic leaves the machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coral_inference.testing.processes import stop_process

LOOPBACK = "127.0.0.1"

# Proxy-free opener: requests to 127.0.0.1 must never be routed through an HTTP proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def find_influxd() -> str | None:
    """Path of the ``influxd`` binary on PATH, or None when InfluxDB is not installed."""
    return shutil.which("influxd")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def render_config(workdir: Path, http_port: int, rpc_port: int, auth_enabled: bool = False) -> str:
    """An influxd config keeping all state under ``workdir`` and all listeners on loopback.

    ``auth_enabled`` turns on InfluxDB 1.x authentication (requests without credentials are
    answered 401).

    Both spellings of the reporting switch are written: upstream 1.x reads
    ``reporting-disabled``, Debian's build reads ``reporting-enabled``; each ignores the other.
    """

    def quoted(value: object) -> str:
        return json.dumps(str(value))

    return f"""\
reporting-disabled = true
reporting-enabled = false
bind-address = {quoted(f"{LOOPBACK}:{rpc_port}")}

[meta]
  dir = {quoted(workdir / "meta")}

[data]
  dir = {quoted(workdir / "data")}
  wal-dir = {quoted(workdir / "wal")}
  query-log-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = {quoted(f"{LOOPBACK}:{http_port}")}
  log-enabled = false
  pprof-enabled = false
  auth-enabled = {"true" if auth_enabled else "false"}

[ifql]
  enabled = false

[continuous_queries]
  enabled = false

[subscriber]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""


def ping(url: str, timeout: float = 1.0) -> bool:
    """True when ``{url}/ping`` answers 204 within ``timeout`` seconds."""
    try:
        with _OPENER.open(f"{url}/ping", timeout=timeout) as response:
            return response.status == 204
    except (urllib.error.URLError, OSError):
        return False


def query(url: str, statement: str, database: str | None = None, timeout: float = 10.0) -> dict:
    """Run an InfluxQL statement through ``POST /query``; returns the first result.

    Raises RuntimeError when the server reports an error for the statement.
    """
    params = {"q": statement, "epoch": "ns"}
    if database is not None:
        params["db"] = database
    body = urllib.parse.urlencode(params).encode()
    request = urllib.request.Request(f"{url}/query", data=body, method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            payload: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{statement!r} failed: HTTP {exc.code} {exc.read()!r}") from exc
    result: dict = payload["results"][0]
    if "error" in result:
        raise RuntimeError(f"{statement!r} failed: {result['error']}")
    return result


def create_database(url: str, database: str) -> None:
    """``CREATE DATABASE`` (a no-op when it exists)."""
    query(url, f'CREATE DATABASE "{database}"')


def select_rows(url: str, database: str, statement: str) -> list[dict[str, Any]]:
    """Rows of a SELECT as dicts keyed by column name (``time`` in ns); [] when empty."""
    rows: list[dict[str, Any]] = []
    for series in query(url, statement, database).get("series", []):
        tags, columns = series.get("tags", {}), series["columns"]
        for values in series["values"]:
            rows.append({**tags, **dict(zip(columns, values, strict=True))})
    return rows


def count_points(url: str, database: str, measurement: str, field: str = "frame_id") -> int:
    """How many points of ``measurement`` carry ``field`` (0 when there are none)."""
    rows = select_rows(url, database, f'SELECT count("{field}") FROM "{measurement}"')
    return int(rows[0]["count"]) if rows else 0


@dataclass(frozen=True)
class SocketInfo:
    """One open inet socket of a process, as /proc reports it."""

    protocol: str
    local_host: str
    remote_host: str

    @property
    def is_loopback_only(self) -> bool:
        """Bound to loopback and connected to loopback or to nothing at all."""
        remote = ipaddress.ip_address(self.remote_host)
        return ipaddress.ip_address(self.local_host).is_loopback and (
            remote.is_loopback or remote.is_unspecified
        )


def open_sockets(pid: int) -> list[SocketInfo]:
    """The inet (TCP/UDP, v4/v6) sockets process ``pid`` holds open (Linux /proc only)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # fd closed while listing
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        table = Path(f"/proc/{pid}/net/{protocol}")
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            columns = line.split()
            if columns[9] in inodes:
                found.append(SocketInfo(protocol, _proc_host(columns[1]), _proc_host(columns[2])))
    return found


def _proc_host(address: str) -> str:
    """Decode the host of a /proc/net address (``0100007F:1F90`` -> ``127.0.0.1``)."""
    raw = bytes.fromhex(address.split(":")[0])
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


class InfluxDBServer:
    """One ``influxd`` process with its config, data and log in a private temporary directory.

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with InfluxDBServer(databases=["metrics"]) as server:
            write_somewhere(server.url)

    The ``databases`` are created (``CREATE DATABASE`` through ``/query``) on a scratch port
    before the server opens ``port``, so no client ever finds the server without them.
    """

    def __init__(
        self,
        port: int | None = None,
        databases: Sequence[str] = (),
        binary: str | None = None,
        startup_timeout: float = 30.0,
        auth_enabled: bool = False,
    ) -> None:
        """Prepare (not start) a server on ``port`` (a free one when None).

        With ``auth_enabled`` the databases are created before authentication is switched on
        and no user exists, so every write is answered 401.

        Raises FileNotFoundError when ``binary`` is None and ``influxd`` is not on PATH.
        """
        found = binary or find_influxd()
        if found is None:
            raise FileNotFoundError("influxd is not installed (apt-get install -y influxdb)")
        self.binary = found
        self.port = port if port is not None else free_port()
        self.databases = tuple(databases)
        self.startup_timeout = startup_timeout
        self.auth_enabled = auth_enabled
        self.process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        """The config file the running server was started with."""
        if self._workdir is None:
            raise RuntimeError("the server is not started")
        return self._workdir / "influxdb.conf"

    def start(self) -> InfluxDBServer:
        """Launch influxd, create the databases, and return once ``/ping`` answers 204.

        Raises RuntimeError (with the server's log) when influxd exits or stays silent for
        ``startup_timeout`` seconds.
        """
        if self._workdir is not None:
            raise RuntimeError("the server is already started")
        self._workdir = Path(tempfile.mkdtemp(prefix="coral-influxd-"))
        try:
            if self.databases:
                scratch_url = self._launch(free_port())
                for database in self.databases:
                    create_database(scratch_url, database)
                self._terminate()
            self._launch(self.port, auth_enabled=self.auth_enabled)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate influxd (kill it after ``timeout`` seconds) and delete its directory."""
        self._terminate(timeout)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def log_tail(self, chars: int = 4000) -> str:
        """The last ``chars`` characters the server logged."""
        if self._workdir is None:
            return ""
        log = self._workdir / "influxd.log"
        return log.read_text(errors="replace")[-chars:] if log.exists() else ""

    def _launch(self, http_port: int, auth_enabled: bool = False) -> str:
        """Start influxd serving HTTP on ``http_port``; returns its URL once it answers."""
        assert self._workdir is not None
        self.config_path.write_text(
            render_config(self._workdir, http_port, free_port(), auth_enabled)
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith("INFLUXDB_")}
        with (self._workdir / "influxd.log").open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "run", "-config", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        url = f"http://{LOOPBACK}:{http_port}"
        deadline = time.monotonic() + self.startup_timeout
        while not ping(url):
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"influxd exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"influxd did not answer {url}/ping in {self.startup_timeout}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)
        return url

    def _terminate(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            stop_process(self.process, timeout)

    def __enter__(self) -> InfluxDBServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
