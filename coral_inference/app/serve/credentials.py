"""Credentials in URLs (``rtsp://user:password@camera/...``) kept out of what ``coral serve``
shows: its logs, its API answers and so the dashboard.

The store of pipelines keeps the real URL (it must reconnect after a restart); it is a 0600 file
in a 0700 directory (:func:`~coral_inference.app.serve.server.serve` sets the umask).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any

#: ``scheme://user:password@`` (the password is anything up to the last ``@`` of the
#: authority, which may itself contain ``@`` or ``:``).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/\s]*):[^/\s]*@")
MASK = "***"


def mask_credentials(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def _mask_exception(error: BaseException) -> None:
    """Mask the string arguments of ``error`` and of the errors it was raised from, in place
    (handlers render tracebacks from the exception objects themselves)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        with contextlib.suppress(Exception):  # an exception type with read-only args
            current.args = tuple(
                mask_credentials(a) if isinstance(a, str) else a for a in current.args
            )
        current = current.__cause__ or current.__context__


def mask_log_records() -> Callable[[], None]:
    """Make every log record of this process (and of the processes it forks) carry its message
    with URL passwords masked, whichever library logs it; returns the undo."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report
            return record
        masked = mask_credentials(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            _mask_exception(record.exc_info[1])
        return record

    logging.setLogRecordFactory(factory)

    def undo() -> None:
        logging.setLogRecordFactory(previous)

    return undo


#: Carries a ``--token`` given on the command line across :func:`exec_without_token_argument`.
TOKEN_VARIABLE = "_CORAL_SERVE_TOKEN"


def without_token_argument(args: list[str], token: str) -> list[str]:
    """``args`` less ``--token TOKEN`` / ``--token=TOKEN``."""
    kept: list[str] = []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--token" and args[index + 1 : index + 2] == [token]:
            skip = True
        elif arg != f"--token={token}":
            kept.append(arg)
    return kept


def exec_without_token_argument(token: str) -> None:
    """Start this program again in this process without ``--token TOKEN`` on its command line
    (which any user can read in ``/proc/PID/cmdline``, as can the pipeline processes' own,
    forked from it), the token passed in :data:`TOKEN_VARIABLE` instead. Returns when the token
    is not on this process's command line (a caller in the same process)."""
    args = list(sys.orig_argv[1:])
    kept = without_token_argument(args, token)
    if kept == args:
        return
    os.environ[TOKEN_VARIABLE] = token
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *kept])


def token_from_exec() -> str | None:
    """The token :func:`exec_without_token_argument` passed, taken out of the environment so
    that nothing started later inherits it."""
    return os.environ.pop(TOKEN_VARIABLE, None)
