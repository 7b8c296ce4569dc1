"""What ``coral run``'s exit status means (the table in the README's "Exit codes" section)."""

from __future__ import annotations

OK = 0
"""The source was processed and every configured output got everything."""
CANNOT_START = 1
"""Nothing ran: bad model package, backend, unwritable output path, preview address."""
USAGE = 2
"""Bad command line or configuration (every problem listed)."""
SOURCE_FAILED = 3
"""The source could not be opened or read, before or during the run (reason in the summary)."""
OUTPUT_LOST_DATA = 4
"""The run finished but an output lost data: the summary's ``lost`` says which and how much."""
SIGNAL_BASE = 128
"""Stopped by a signal, after a clean stop: 128 + its number (130 SIGINT, 143 SIGTERM, 129
SIGHUP)."""


def for_signal(signum: int) -> int:
    """The shell convention for "stopped by signal ``signum``"."""
    return SIGNAL_BASE + signum
