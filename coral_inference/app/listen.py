"""The one wording, and exit status, for a server of ``coral`` that cannot take its address
(``coral serve``, ``coral run --preview``)."""

from __future__ import annotations

import os

from coral_inference.app import exit_codes

#: A server that cannot listen did not start.
EXIT_CODE = exit_codes.CANNOT_START


def cannot_listen(host: str, port: int, error: BaseException | str) -> str:
    """``cannot listen on HOST:PORT: REASON``, with what to do when the port is taken; the
    reason of an ``OSError`` is its errno's text (servers wrap it in words of their own)."""
    number = getattr(error, "errno", None)
    reason = os.strerror(number) if isinstance(number, int) else str(error) or "timed out"
    shown = f"[{host}]" if ":" in host else host
    advice = "; another program uses it: choose another port" if "in use" in reason else ""
    return f"cannot listen on {shown}:{port}: {reason}{advice}"
