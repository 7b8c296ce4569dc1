"""Importing ``inference`` for a job whose standard output belongs to the command.

``inference`` logs through a rich handler on standard output and, at its first import, warns
and logs about optional model families (inference 1.x: dozens of lines from transformers,
bitsandbytes, timm, ... whichever are installed) that concern no local model package.
"""

from __future__ import annotations

import importlib
import logging
import sys
import warnings


def import_inference_with_logs_on_stderr(also: tuple[str, ...] = ()) -> None:
    """Import ``inference`` (and the modules ``also`` names) quietly (records below ERROR and
    warnings are off for the import; ``-W``/``PYTHONWARNINGS`` still win) and send its log
    records to standard error, so that standard output carries only the command's own output
    (one JSON object with ``--json``).

    Costly (seconds; inference 1.x imports torch): call it once the job's input is checked.
    """
    disabled = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            if not sys.warnoptions:
                warnings.simplefilter("ignore")
            import inference.core.logger  # noqa: F401 - configures the "inference" logger

            # The model registry the local_models patch extends: importing it imports every
            # optional model family, the source of the noise.
            import inference.models.utils  # noqa: F401

            for module in also:
                importlib.import_module(module)
    finally:
        logging.disable(disabled)

    logger = logging.getLogger("inference")
    for handler in list(logger.handlers):
        if getattr(handler, "stream", None) is not sys.stderr:
            logger.removeHandler(handler)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s inference: %(message)s"))
        logger.addHandler(handler)
