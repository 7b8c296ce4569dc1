"""A real mosquitto broker on 127.0.0.1 and a paho subscriber that records what arrives.

:class:`Mosquitto` writes its config, password file, persistence and log into a private
directory, listens only on ``127.0.0.1:PORT`` and can be stopped and started again on the same
port (persistence on: sessions and retained messages survive, as on a real install).
:class:`Recorder` subscribes to ``#`` with QoS 1 in a persistent session, so what the broker
queued for it while it was away arrives on reconnect; tests wait on its conditions.
"""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coral_inference.testing.influxdb import LOOPBACK, free_port
from coral_inference.testing.processes import stop_process


def find_mosquitto() -> str | None:
    """``mosquitto`` on PATH (Debian installs it in /usr/sbin)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


class Mosquitto:
    """One broker: ``start()`` waits until it accepts connections; ``stop()`` ends it."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        port: int | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.users = users or {}
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "mosquitto.log"
        self.config = workdir / "mosquitto.conf"
        lines = [
            f"listener {self.port} {LOOPBACK}",
            f"user {getpass.getuser()}",  # as root: stay root (it owns the temp dir)
            "persistence true",
            f"persistence_location {workdir}/",
            f"log_dest file {self.log}",
            "log_type all",
        ]
        if self.users:
            passwd = workdir / "passwd"
            for index, (user, password) in enumerate(self.users.items()):
                command = [self._passwd_tool(), "-b", *(["-c"] if index == 0 else [])]
                subprocess.run([*command, str(passwd), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.config.write_text("\n".join(lines) + "\n")

    def _passwd_tool(self) -> str:
        tool = shutil.which("mosquitto_passwd")
        if tool is None:
            raise RuntimeError("mosquitto_passwd not found (apt-get install -y mosquitto)")
        return tool

    def start(self, timeout: float = 60.0) -> None:
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"mosquitto exited ({self.process.returncode}): {error}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)  # polling a port, not synchronising with the code under test
        raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self) -> None:
        """SIGTERM (persistence is written), reaped."""
        if self.process is not None:
            stop_process(self.process)
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None


@dataclass
class Message:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    """A paho subscriber to ``#`` recording every message; reconnects with its session."""

    def __init__(
        self,
        port: int,
        client_id: str,
        clean: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt

        version = getattr(mqtt, "CallbackAPIVersion", None)
        args: tuple[Any, ...] = (version.VERSION2,) if version is not None else ()
        self.client = mqtt.Client(*args, client_id=client_id, clean_session=clean)
        self.messages: list[Message] = []
        self.subscribed = threading.Event()
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.on_message = self._on_message
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect_async(LOOPBACK, port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, *rest: Any) -> None:
        # paho 1.6: a dict; paho 2: ConnectFlags. A resumed session keeps its subscription, and
        # subscribing again would replay every retained message as a duplicate.
        if isinstance(flags, dict):
            resumed = bool(flags.get("session present"))
        else:
            resumed = bool(getattr(flags, "session_present", False))
        if resumed and self.subscribed.is_set():
            return
        client.subscribe("#", qos=1)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self._cond:
            self.messages.append(Message(message.topic, message.payload, bool(message.retain)))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Message]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``condition()`` (checked on every message) holds, or fail saying ``what``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m.topic for m in self.messages})
                    raise AssertionError(f"timed out waiting for {what}; topics seen: {topics}")
                self._cond.wait(min(left, 1.0))

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
