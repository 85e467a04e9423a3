"""Real RTSP cameras for the tests: GStreamer's RTSP server (tests/rtsp_server.py, run by Debian's python3)
sending real footage (vtest, scaled to 160x90, H.264, key frames every 10) in real time from 127.0.0.1."""
from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from assets import DATA, ROOT
from conftest import free_port

SYSTEM_PYTHON = "/usr/bin/python3"


def gst_rtsp_available() -> bool:
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("ffmpeg") is None:
        return False
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


needs_rtsp = pytest.mark.skipif(not gst_rtsp_available(),
                                reason="needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and ffmpeg")


def camera_clip(path: Path, seconds: int = 10, gop: int = 10) -> Path:
    """`seconds` of the real clip, looped, at 160x90 and 25 fps with a key frame every `gop` frames, as an
    MPEG-TS the server streams."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(DATA / "video" /
                    "vtest_320x180_2s.mp4"), "-t", str(seconds), "-vf", "scale=160:90", "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-an",
                    str(path)], check=True, timeout=120)
    return path


class Camera:
    """A GStreamer RTSP server on a free port of 127.0.0.1 streaming `clip` at rtsp://127.0.0.1:PORT/cam."""

    def __init__(self, clip: Path, port: int | None = None) -> None:
        self.clip, self.port, self.proc = clip, port or free_port(), None
        self.keepalive: subprocess.Popen | None = None
        self.plays = 0  # how many times a client started playing, over every start of the server
        self._played = threading.Condition()

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam"

    def start(self) -> Camera:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_server.py"), str(self.clip),
                                      str(self.port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready", self.proc.stderr.read()
        threading.Thread(target=self._count_plays, args=(self.proc,), daemon=True).start()
        return self

    def _count_plays(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if line.strip() == "play":
                with self._played:
                    self.plays += 1
                    self._played.notify_all()

    def wait_played(self, count: int = 1, timeout: float = 90) -> bool:
        """Wait until clients have started playing `count` times in all (srstream, once it has connected)."""
        with self._played:
            return self._played.wait_for(lambda: self.plays >= count, timeout)

    def watch(self) -> None:
        """Start the camera's stream with another client (ffmpeg reading it), so a later client joins mid-way."""
        self.keepalive = subprocess.Popen(["ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i", self.url,
                                           "-f", "null", "-"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        for proc in (self.keepalive, self.proc):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


class Receiver:
    """A server that accepts a published stream, as an NVR's restreamer does: ffmpeg listening for RTSP
    ANNOUNCE/RECORD (`-rtsp_flags listen`) or an RTMP publisher (`-listen 1`) on 127.0.0.1, writing what it gets
    to `out` (MPEG-TS) as a client reading the stream back would see it."""

    def __init__(self, scheme: str, out: Path, port: int | None = None) -> None:
        self.scheme, self.out, self.port = scheme, out, port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/cam_sr" if self.scheme == "rtsp" else \
            f"rtmp://127.0.0.1:{self.port}/live/cam_sr"

    def start(self, out: Path | None = None) -> Receiver:
        self.out = out or self.out
        listen = ["-rtsp_flags", "listen"] if self.scheme == "rtsp" else ["-listen", "1"]
        self.proc = subprocess.Popen(["ffmpeg", "-v", "error", *listen, "-timeout", "60", "-i", self.url, "-c",
                                      "copy", "-f", "mpegts", "-y", str(self.out)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return self

    def stop(self) -> None:
        """End the server as a restart would (ffmpeg finishes the file it wrote)."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
