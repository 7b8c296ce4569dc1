"""URL passwords masked in what ``coral serve`` logs and answers; ``--token`` taken off the
command line."""

from __future__ import annotations

import io
import logging

import pytest

from coral_inference.app.serve.credentials import (
    mask_credentials,
    mask_log_records,
    without_token_argument,
)

pytestmark = pytest.mark.core


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("rtsp://bob:hunter2@10.0.0.9:554/s", "rtsp://bob:***@10.0.0.9:554/s"),
        ("rtsp://admin:p@ss:w@rd@cam/x", "rtsp://admin:***@cam/x"),
        ("see http://u:p@h/a and rtsps://v:q@k/b", "see http://u:***@h/a and rtsps://v:***@k/b"),
        ("rtsp://cam.local:554/stream", "rtsp://cam.local:554/stream"),
        ("http://user@host/x", "http://user@host/x"),
    ],
)
def test_passwords_in_urls_are_masked(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


def test_log_records_and_their_exceptions_are_masked() -> None:
    password = "hunter" + "2"  # not in a source line a traceback shows
    url = f"rtsp://bob:{password}@cam/x"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("coral-test-masking")
    logger.addHandler(handler)
    undo = mask_log_records()
    try:
        logger.warning("cannot open %s", url)
        try:
            try:
                raise OSError(f"refused: {url}")
            except OSError as cause:
                raise RuntimeError(f"source {url} failed") from cause
        except RuntimeError:
            logger.exception("pipeline failed")
    finally:
        undo()
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert password not in text
    assert text.count("rtsp://bob:***@cam/x") == 3, text


@pytest.mark.parametrize(
    ("args", "kept"),
    [
        (
            ["-m", "x", "serve", "--token", "T" * 16, "--port", "0"],
            ["-m", "x", "serve", "--port", "0"],
        ),
        (["serve", f"--token={'T' * 16}"], ["serve"]),
        (["serve", "--port", "0"], ["serve", "--port", "0"]),
    ],
)
def test_the_token_is_taken_off_the_arguments(args: list[str], kept: list[str]) -> None:
    assert without_token_argument(args, "T" * 16) == kept
