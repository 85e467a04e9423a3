"""A real RTSP server for the tests: GStreamer's gst-rtsp-server streaming an H.264 MPEG-TS file in real time.

Run with Debian's python3 (python3-gi, gir1.2-gst-rtsp-server-1.0, gstreamer1.0-rtsp):
    /usr/bin/python3 tests/rtsp_server.py CLIP.ts PORT
It serves rtsp://127.0.0.1:PORT/cam, prints "ready" once listening and "play" each time a client starts playing
(tests time their camera outages from there, not from a guess at how long a client takes to start).
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    clip, port = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    # The clip is sent as it is; give it short GOPs so a client that (re)joins gets a key frame at once.
    factory.set_launch(f"( filesrc location={clip} ! tsdemux ! h264parse ! rtph264pay config-interval=1 "
                       "name=pay0 pt=96 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    server.connect("client-connected", lambda _server, client: client.connect("play-request", _played))
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


def _played(_client, _context) -> None:
    print("play", flush=True)


if __name__ == "__main__":
    main()
