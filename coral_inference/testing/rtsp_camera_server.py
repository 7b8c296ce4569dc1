"""A live RTSP camera for the tests: GStreamer's RTSP server (Debian's
``gir1.2-gst-rtsp-server-1.0`` + ``python3-gi``), run by the system ``python3``.

Usage: ``/usr/bin/python3 rtsp_camera_server.py PORT PATH WIDTHxHEIGHT FPS``. Serves a moving
test pattern encoded live as H.264 (a keyframe every second) at ``rtsp://127.0.0.1:PORT/PATH``
and prints ``ready PORT`` once it listens. Stop it with SIGTERM.
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, path, size, fps = sys.argv[1:5]
    width, height = size.split("x")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},"
        f"framerate={fps}/1 ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={fps} "
        "! rtph264pay name=pay0 pt=96 config-interval=1 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory(path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", flush=True)
        sys.exit(1)
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    print(f"ready {server.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
