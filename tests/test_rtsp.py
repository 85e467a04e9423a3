"""Live RTSP against a real GStreamer RTSP server on 127.0.0.1: read, server killed mid-stream, restarted,
the upscaler reconnects, timestamps stay monotonic, and the output file plays to the end."""
import shutil
import subprocess
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import DATA, ROOT, free_port
from srstream.engine import Upscaler
from srstream.video import EncodeOptions, upscale_video

SYSTEM_PYTHON = "/usr/bin/python3"


def _gst_rtsp_available() -> bool:
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("ffmpeg") is None:
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _gst_rtsp_available(),
                                reason="needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and ffmpeg")


class Server:
    def __init__(self, clip: Path, port: int) -> None:
        self.clip, self.port, self.proc = clip, port, None

    def start(self) -> None:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_server.py"), str(self.clip),
                                      str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def camera(tmp_path):
    clip = tmp_path / "cam.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "4", "-i", str(DATA / "video" /
                    "vtest_320x180_2s.mp4"), "-t", "10", "-vf", "scale=160:90", "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "10", "-an", str(clip)], check=True, timeout=120)
    server = Server(clip, free_port())
    server.start()
    yield server
    server.kill()


def test_reconnects_after_the_server_dies_and_finishes_a_playable_file(camera, tmp_path):
    url = f"rtsp://127.0.0.1:{camera.port}/cam"
    out = tmp_path / "live_x4.mkv"
    restarted = threading.Event()

    def outage() -> None:
        time.sleep(2.5)
        camera.kill()
        time.sleep(1.5)
        camera.start()
        restarted.set()

    threading.Thread(target=outage, daemon=True).start()
    upscaler = Upscaler("fast-x4", backend="cpu", batch_size=2)
    stats = upscale_video(url, out, upscaler, EncodeOptions(preset="ultrafast"), batch=2, duration=6.0,
                          progress=False, retries=10, timeout_s=2.0)
    assert restarted.is_set()
    assert stats.reconnects >= 1
    assert stats.frames_out == stats.frames_in > 60
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (640, 360)
        times = [float(f.pts * v.time_base) for f in c.decode(video=0)]
    assert len(times) == stats.frames_out
    assert np.all(np.diff(times) > 0)  # monotonic across the reconnect
    assert times[-1] > 3.0
