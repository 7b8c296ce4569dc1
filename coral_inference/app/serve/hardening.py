"""inference's switches that ``coral serve`` sets before inference is imported.

inference reads them once, when ``inference.core.env`` is first imported, and the server's
pipeline processes are forked from it, so they hold there too:

* its CORS middleware answers every origin with credentials (``ALLOW_ORIGINS`` defaults to
  ``*``): off; the server's :class:`~coral_inference.app.serve.security.Guard` answers CORS for
  ``services.serve.allowed_origins`` only;
* its stream-manager routes (``/inference_pipelines/initialise`` and the rest) take any video
  reference and any workflow: off, ``/coral/pipelines`` is the checked way in;
* workflows' custom Python blocks, blocks that write files or read the environment, and images
  loaded from local paths: off unless ``services.serve.allow_code_execution`` (then a token
  holder can run code as the server's user, and the README says so);
* image URLs in requests may not lead to loopback or LAN addresses (inference 1.x's
  ``ALLOW_URL_TO_NON_GLOBAL_ADDRESSES``; 0.54 refuses URLs without a domain name or HTTPS);
* FFmpeg opens only the protocols the allowed sources need (``OPENCV_FFMPEG_CAPTURE_OPTIONS``).
"""

from __future__ import annotations

import os
import sys

from coral_inference.app.serve.settings import ServeError, ServeSettings

#: inference's switches that hand code execution or host files to a request.
CODE_EXECUTION_SWITCHES = (
    "ALLOW_CUSTOM_PYTHON_EXECUTION_IN_WORKFLOWS",
    "ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE",
    "ALLOW_WORKFLOW_BLOCKS_ACCESSING_ENVIRONMENTAL_VARIABLES",
    "ALLOW_LOADING_IMAGES_FROM_LOCAL_FILESYSTEM",
    "ALLOW_NUMPY_INPUT",
)
#: The protocols FFmpeg may open: files, HTTP(S) (and HLS over it), RTSP(S) with RTP.
FFMPEG_PROTOCOLS = "file,crypto,http,https,tcp,tls,udp,rtp,rtsp,srtp"
FFMPEG_OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"


def harden_environment(settings: ServeSettings) -> None:
    """Set inference's and FFmpeg's switches in this process's environment; ServeError when
    inference is already imported (then they would not take effect)."""
    if "inference.core.env" in sys.modules:
        raise ServeError(
            "inference was imported before coral serve could configure it (a plugin that "
            "imports inference when it is loaded? plugins must import it inside their hooks); "
            "its switches would not take effect, so coral serve does not start"
        )
    os.environ["ALLOW_ORIGINS"] = ""
    os.environ["ENABLE_STREAM_API"] = "False"
    allowed = "True" if settings.allow_code_execution else "False"
    for name in CODE_EXECUTION_SWITCHES:
        os.environ[name] = allowed
    # inference 1.x: image URLs may not lead to loopback or LAN addresses (the owner may say
    # otherwise in the environment)
    os.environ.setdefault("ALLOW_URL_TO_NON_GLOBAL_ADDRESSES", "False")
    options = [
        item
        for item in os.environ.get(FFMPEG_OPTIONS, "").split("|")
        if item and not item.startswith("protocol_whitelist;")
    ]
    os.environ[FFMPEG_OPTIONS] = "|".join([*options, f"protocol_whitelist;{FFMPEG_PROTOCOLS}"])


def check_inference_environment(settings: ServeSettings) -> None:
    """After inference's import: ServeError unless it read the switches as set."""
    from inference.core import env

    expected = settings.allow_code_execution
    wrong = [n for n in CODE_EXECUTION_SWITCHES if bool(getattr(env, n, expected)) != expected]
    if getattr(env, "ENABLE_STREAM_API", False):
        wrong.append("ENABLE_STREAM_API")
    if wrong:
        raise ServeError(
            f"inference did not take coral serve's settings ({', '.join(wrong)}); "
            "start coral serve as its own process"
        )
