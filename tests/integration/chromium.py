"""Headless Chromium driven over its DevTools protocol, for the dashboard tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def chromium(url: str, profile: Path) -> Iterator[subprocess.Popen]:
    """A headless Chromium on ``url`` with its profile in ``profile``; killed after.

    Its scratch directories (``org.chromium.Chromium.*``, which hold its singleton socket: the
    path must stay short) go in a temporary directory removed after, not left in /tmp.
    """
    scratch = tempfile.mkdtemp(prefix="chromium-")
    browser = subprocess.Popen(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--autoplay-policy=no-user-gesture-required",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-crash-reporter",
            "--disable-features=WebRtcHideLocalIpsWithMdns",
            "--window-size=1280,1500",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": scratch},
        start_new_session=True,
    )
    try:
        yield browser
    finally:
        browser.terminate()
        try:
            browser.wait(10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(browser.pid, signal.SIGKILL)
            shutil.rmtree(scratch, ignore_errors=True)


async def devtools(profile: Path, timeout: float) -> Any:
    """(aiohttp session, websocket) of the first page of the Chromium using ``profile``."""
    import aiohttp

    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while not port_file.is_file() or len(port_file.read_text().split()) < 2:
        assert time.monotonic() < deadline, "chromium did not open its DevTools port"
        await asyncio.sleep(0.1)
    port = port_file.read_text().split()[0]
    session = aiohttp.ClientSession()
    async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
        pages = [p for p in await response.json() if p["type"] == "page"]
    return session, await session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)


class Page:
    """One page's DevTools calls."""

    def __init__(self, socket_: Any) -> None:
        self.socket = socket_
        self.calls = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        await self.socket.send_json({"id": self.calls, "method": method, "params": params})
        while True:
            reply = await self.socket.receive_json()
            if reply.get("id") == self.calls:
                return reply["result"]

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` (None while the page is still loading)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        value = result["result"].get("value")
        return json.loads(value) if isinstance(value, str) else value

    async def wait_for(self, expression: str, timeout: float) -> Any:
        """The first truthy value of ``expression``, polled until ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                seen = await self.evaluate(
                    "JSON.stringify([location.href, document.body ? document.body.innerText : ''])"
                )
                raise AssertionError(f"timed out waiting for {expression}; the page: {seen}")
            await asyncio.sleep(0.2)
