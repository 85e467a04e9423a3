"""Publishing that outlives the server it publishes to: `Publisher` pushes the upscaled frames to a URL (RTSP
ANNOUNCE/RECORD over TCP into MediaMTX, go2rtc or GStreamer; RTMP) from a thread of its own, and when the server
goes away it drops frames, tries again with back-off and resumes at the next frame once the server is back. `Tee`
hands each frame to several sinks (the recording and the publisher), so a camera's stream is upscaled once.

Both have the Sink methods the encode thread and the Stream call: write, mux_packet, close, abort, carried.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Protocol

import av

from srstream.redact import redact
from srstream.video.sink import CarriedStreams

log = logging.getLogger("srstream.video")
QUEUE_FRAMES = 8  # a live viewer wants the newest frame: a publisher that falls behind drops the oldest
BACKOFF_S = (0.5, 30.0)
LATENCY_SAMPLES = 500  # first and longest wait between attempts to reach the server


class SinkLike(Protocol):
    """What the encode thread writes into and the Stream finishes."""

    carried: CarriedStreams

    def write(self, frame: av.VideoFrame) -> int | None: ...

    def mux_packet(self, packet: av.Packet) -> None: ...

    def close(self) -> None: ...

    def abort(self, keep_written: bool = False) -> None: ...


class Publisher:
    """Frames to `url` through sinks made by `open_sink`, reopened after every failure for as long as it runs;
    a frame older than `max_age` seconds since its capture when its turn comes is dropped.

    Never raises into the encode thread: `up` says whether it is publishing, `published` counts frames sent,
    `reconnects` the times it came back after a failure."""

    def __init__(self, url: str, open_sink: Callable[[], SinkLike], max_age: float | None = None) -> None:
        self.url, self.open_sink, self.max_age = url, open_sink, max_age
        self.carried = CarriedStreams()
        self.up = False
        self.published = self.dropped = self.reconnects = 0
        self._frames: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self._stop = threading.Event()
        self._told = False  # the current outage has been logged
        self.latencies: collections.deque = collections.deque(maxlen=LATENCY_SAMPLES)  # capture to sent, s
        self.lag = 0.0  # moving average of a frame's encode and send: the live policy's deadline leaves room for it
        self._thread = threading.Thread(target=self._run, daemon=True, name="srstream-publish")
        self._thread.start()

    def write(self, frame: av.VideoFrame) -> None:
        """Queue a frame to publish; the oldest queued one goes when the publisher is behind. The frame is the one
        the recording has just encoded (Tee writes the recording first): the encoder took its own reference when
        it was sent, so setting this frame's key-frame mark for the re-stream later changes nothing there."""
        while True:
            try:
                self._frames.put_nowait(frame)
                return
            except queue.Full:
                try:
                    self._frames.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    @property
    def latency_p95(self) -> float | None:
        """The 95th percentile of the recent frames' seconds from capture to published."""
        seconds = sorted(self.latencies)
        return round(seconds[int(0.95 * (len(seconds) - 1))], 3) if seconds else None

    def mux_packet(self, packet: av.Packet) -> None:
        """Other streams are not published (the picture alone reaches the NVR)."""

    def close(self) -> None:
        """Send what is queued, close the connection and stop."""
        self._stop.set()
        self._thread.join(timeout=10)

    def abort(self, keep_written: bool = False) -> None:
        self.close()

    def _run(self) -> None:
        delay, sink, sent = BACKOFF_S[0], None, False
        while not (self._stop.is_set() and self._frames.empty()):
            try:
                frame = self._frames.get(timeout=0.1)
            except queue.Empty:
                continue
            if self._stale(frame):
                continue
            if sink is None:
                sink = self._open()
                if sink is None:
                    self._wait(delay)
                    delay = min(delay * 2, BACKOFF_S[1])
                    continue
            taken = time.monotonic()
            try:
                muxed = sink.write(frame)  # the connection is made with the first packet (RTSP ANNOUNCE, RTMP)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                sink.abort()
                sink = None
                self._went_down(exc)
                if not sent:  # never got through: the server is away, wait before the next attempt
                    self._wait(delay)
                    delay = min(delay * 2, BACKOFF_S[1])
                sent = False
                continue
            self.published += 1
            now = time.monotonic()
            if sent:  # steady publishing: encode and send (a connection's handshake is not the stream's pace)
                self.lag = 0.9 * self.lag + 0.1 * (now - taken)
            if isinstance(frame.opaque, float):  # its capture time, set by the encode thread
                self.latencies.append(now - frame.opaque)
            if muxed and not sent:
                sent, delay = True, BACKOFF_S[0]
                self._came_up()
        if sink is not None:
            try:
                sink.close()
            except (av.error.FFmpegError, OSError, ValueError):
                sink.abort()
        self.up = False

    def _stale(self, frame: av.VideoFrame) -> bool:
        """Older than `max_age` since capture (queued while the server was being reached): a viewer is better
        served by the next frame; counted as dropped."""
        if self.max_age is None or not isinstance(frame.opaque, float):
            return False
        if time.monotonic() - frame.opaque <= self.max_age:
            return False
        self.dropped += 1
        return True

    def _open(self):
        try:
            return self.open_sink()
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._went_down(exc)
            return None

    def _went_down(self, exc: BaseException) -> None:
        """Say once per outage that the server cannot be reached."""
        if self.up or not self._told:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning(
                "srstream: publishing to %s failed (%s); trying again with back-off", redact(self.url), redact(reason)
            )
        self.up, self._told = False, True

    def _came_up(self) -> None:
        if self._told:
            self.reconnects += 1
            log.warning("srstream: publishing to %s again", redact(self.url))
        self.up, self._told = True, False

    def _wait(self, seconds: float) -> None:
        """Back off, dropping the frames that come meanwhile (they would be stale when the server is back)."""
        deadline = time.monotonic() + seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self._frames.get(timeout=0.1)
                self.dropped += 1
            except queue.Empty:
                pass


class Tee:
    """Each frame into every sink, in order, the recording first; other streams' packets into the first, whose
    carried streams it reports. A failing first sink fails the output, as a lone one would; a Publisher never
    fails."""

    def __init__(self, sinks: list[SinkLike]) -> None:
        self.sinks = sinks
        self.carried = sinks[0].carried

    def write(self, frame: av.VideoFrame) -> None:
        for sink in self.sinks:
            sink.write(frame)

    def mux_packet(self, packet: av.Packet) -> None:
        self.sinks[0].mux_packet(packet)

    def close(self) -> None:
        for sink in self.sinks[1:]:
            sink.close()
        self.sinks[0].close()

    def abort(self, keep_written: bool = False) -> None:
        for sink in self.sinks:
            sink.abort(keep_written)
