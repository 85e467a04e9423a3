"""Video inputs: which kinds there are (`InputKind`: files, image-sequence patterns, network streams), how each is
opened with PyAV with clear one-line errors, and the decode thread (`Decoder`) that reads one into a FrameBuffer,
reconnecting network streams. `DecoderLike` is what the rest of the pipeline needs of that thread.

A new kind of input is one `InputKind` subclass added to INPUT_KINDS; the Decoder reads whatever `open` returns.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av

from srstream.video.buffer import CaptureClock, FrameBuffer
from srstream.video.colour import Colour, colour_of
from srstream.video.frames import END, Decoded, decode
from srstream.video.settings import FALLBACK_RATE, TIMEOUT_S
from training.compression import DECODER_OPTIONS, QpAverage
from training.errors import SrstreamError

log = logging.getLogger("srstream.video")

__all__ = [
    "END",
    "INPUT_KINDS",
    "Decoder",
    "DecoderLike",
    "InputKind",
    "VideoInputError",
    "classify",
    "is_live",
    "is_video_input",
    "open_input",
]

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".ts", ".m2ts", ".webm", ".m4v", ".mts", ".flv"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "srt://", "udp://", "http://", "https://")
SEQUENCE_FRAMERATE = "25"  # an image sequence has no timing of its own


class VideoInputError(SrstreamError, ValueError):
    """An input cannot be opened or decoded."""


class InputKind:
    """One kind of input: which names it takes (`matches`), whether it is a network stream (`network`: read live
    by default, reconnected when it drops) and how PyAV opens it (`av_options`, or `open` itself)."""

    kind = ""
    network = False

    def __init__(self, target: str) -> None:
        self.target = target

    @staticmethod
    def matches(source: str) -> bool:
        """Whether `source` names an input of this kind."""
        raise NotImplementedError

    def is_video(self) -> bool:
        """Whether the video path handles it (the image path takes the other files)."""
        return True

    def av_options(self, timeout_s: float) -> tuple[str | None, dict[str, str]]:
        """The demuxer to force (None: probe) and its options."""
        return None, {}

    def open(self, timeout_s: float) -> av.container.InputContainer:
        """The input opened for demuxing; a one-line VideoInputError where it cannot be."""
        fmt, options = self.av_options(timeout_s)
        try:
            return av.open(self.target, mode="r", format=fmt, options=options, timeout=timeout_s)
        except av.error.FFmpegError as exc:
            raise VideoInputError(f"{self.target}: cannot open ({_reason(exc)})") from None


class NetworkStream(InputKind):
    """rtsp://, rtmp://, srt://, udp://, http(s):// ...; RTSP over TCP, with connect and read timeouts."""

    kind = "stream"
    network = True

    @staticmethod
    def matches(source: str) -> bool:
        return source.startswith(STREAM_SCHEMES)

    def av_options(self, timeout_s: float) -> tuple[str | None, dict[str, str]]:
        micro = str(int(timeout_s * 1e6))
        options = {"rw_timeout": micro}
        if self.target.startswith(("rtsp://", "rtsps://")):
            options.update(rtsp_transport="tcp", timeout=micro)
        return None, options


class ImageSequence(InputKind):
    """A printf pattern of image files (frame_%04d.png), read at SEQUENCE_FRAMERATE."""

    kind = "sequence"

    @staticmethod
    def matches(source: str) -> bool:
        return re.search(r"%0?\d*d", source) is not None

    def av_options(self, timeout_s: float) -> tuple[str | None, dict[str, str]]:
        return "image2", {"framerate": SEQUENCE_FRAMERATE}


class VideoFile(InputKind):
    """Any other name: a file, checked before PyAV sees it so that the usual mistakes read plainly."""

    kind = "file"

    @staticmethod
    def matches(source: str) -> bool:
        return True

    def is_video(self) -> bool:
        return Path(self.target).suffix.lower() in VIDEO_SUFFIXES

    def open(self, timeout_s: float) -> av.container.InputContainer:
        path = Path(self.target)
        if not path.exists():
            raise VideoInputError(f"{self.target}: no such file")
        if path.is_dir():
            raise VideoInputError(f"{self.target}: is a directory, not a video")
        if path.stat().st_size == 0:
            raise VideoInputError(f"{self.target}: empty file (0 bytes)")
        return super().open(timeout_s)


class StandardInput(InputKind):
    """`-`: a container streamed into standard input (`ffmpeg ... -f matroska - | srstream upscale - OUT`), any
    that FFmpeg can read without seeking: matroska, nut, mpegts, fragmented MP4."""

    kind = "pipe"

    @staticmethod
    def matches(source: str) -> bool:
        return source == "-"

    def open(self, timeout_s: float) -> av.container.InputContainer:
        try:
            return av.open("pipe:0", mode="r")
        except av.error.FFmpegError as exc:
            raise VideoInputError(
                f"-: cannot read a video from standard input ({_reason(exc)}; stream a "
                "container that needs no seeking: matroska, nut or mpegts)"
            ) from None


INPUT_KINDS: tuple[type[InputKind], ...] = (StandardInput, NetworkStream, ImageSequence, VideoFile)  # first match


def classify(source: str) -> InputKind:
    """The kind of input `source` names: a URL is a stream, a printf pattern a sequence, anything else a file."""
    return next(kind(source) for kind in INPUT_KINDS if kind.matches(source))


def is_video_input(source: str) -> bool:
    """True for what the video path handles (URL, sequence pattern, video file suffix)."""
    return classify(source).is_video()


def is_live(source: str) -> bool:
    """Whether an input is live by default: network streams (rtsp, udp, srt, rtmp, http live), not files."""
    return classify(source).network


def open_input(source: str, timeout_s: float = TIMEOUT_S) -> av.container.InputContainer:
    """Open `source` for demuxing: its kind's way, then checked for a video stream this FFmpeg decodes."""
    container = classify(source).open(timeout_s)
    if not container.streams.video:
        container.close()
        raise VideoInputError(f"{source}: has no video stream")
    av_stream = container.streams.video[0]
    if av_stream.codec_context is None or not av_stream.codec_context.name:
        container.close()
        raise VideoInputError(f"{source}: video codec is not supported by this FFmpeg build")
    return container


def probe_size(source: str, timeout_s: float = TIMEOUT_S) -> tuple[int, int]:
    """(width, height) of an input's first video stream as its container declares it."""
    with open_input(source, timeout_s) as container:
        context = container.streams.video[0].codec_context
        return context.width, context.height


def _reason(exc: av.error.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc)


class DecoderLike(Protocol):
    """What a Stream reads from: a thread filling its FrameBuffer with `Decoded` frames and other streams' packets,
    in demux order, then END. `Decoder` is the one for everything PyAV opens."""

    container: av.container.InputContainer  # its other streams and metadata are carried to the output
    av_stream: av.video.stream.VideoStream  # PyAV's video stream read: size, rate, time base, frame count
    colour: Colour | None  # from the first frame
    rotation: int  # counter-clockwise degrees, from the first frame
    error: BaseException | None  # why it ended, if it failed
    reconnects: int
    frames: int  # decoded so far

    def start(self) -> None:
        """Start reading (once)."""

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (after END, or the stop flag)."""

    def close(self) -> None:
        """Close the input, now or as the thread ends."""


class _StreamEnded(Exception):
    """A live stream stopped sending: treated like a dropped connection."""


class Decoder(threading.Thread):
    """Demuxes one input into a FrameBuffer of `Decoded` frames and passthrough packets (in demux order), then END;
    reconnects network streams. `duration` counts from the first frame decoded. A file read `live` is paced at its
    own frame rate, as a camera would send it (ffmpeg's -re)."""

    def __init__(
        self,
        source: str,
        out: FrameBuffer,
        duration: float | None,
        retries: int,
        timeout_s: float,
        stop: threading.Event,
        live: bool | None = None,
        read_qp: bool = False,
        tap: Callable[[av.Packet], None] | None = None,
    ) -> None:
        super().__init__(daemon=True, name="srstream-decode")
        self.source, self.out, self.duration, self.retries = source, out, duration, retries
        self.timeout_s, self.stop = timeout_s, stop
        self.network = classify(source).network
        self.live = self.network if live is None else live
        self.clock = CaptureClock()
        self._paced_from: float | None = None
        self.container = open_input(source, timeout_s)
        self._closing, self._closed = threading.Lock(), False
        self._ended = self._close_on_exit = False
        self.tap = tap  # given each video packet once decoded (keep_original: stream-copied as it came)
        self.read_qp = read_qp  # each frame's QP map, where the codec has one: only for a model that takes it
        self.av_stream = self.container.streams.video[0]
        self._set_up_decoder()
        self.qp_average = QpAverage()  # the model sees the stream's QP averaged over its frames, not each frame's
        self._held: list[Decoded] = []  # a file's first frames, until their mean QP is known (QpAverage.seed)
        self.colour: Colour | None = None
        self.rotation = 0  # counter-clockwise degrees from the input's display matrix
        self.error: BaseException | None = None
        self.reconnects = 0
        self.frames = 0
        self._offset = 0  # added to pts after a reconnect, so timestamps keep rising
        self._last_pts: int | None = None
        self._first_pts: int | None = None

    def _set_up_decoder(self) -> None:
        """Frame threads, except for a model that takes the QP: FFmpeg's H.264 decoder with frame threads exports
        some B frames' QP maps half-written (on the bundled vtest clip, 8 runs in 12 had a wrong map among the first
        8 frames; none with slice threads). Slice threads decode the bundled 720p clip, QP read, at 249 fps against
        335 with frame threads on 2 cores: far above what a model upscales 720p at on a CPU (on a GPU it may bound a
        fast QP model; not measured)."""
        self.av_stream.thread_type = "SLICE" if self.read_qp else "AUTO"
        if self.read_qp:
            self.av_stream.codec_context.options = dict(DECODER_OPTIONS)

    def _put(self, item) -> bool:
        return self.out.put(item, self.stop)

    def _frames(self, packet: av.Packet) -> Iterator[av.VideoFrame]:
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            log.warning("srstream: skipped an undecodable packet in %s", self.source)

    @property
    def _time_base(self) -> Fraction:
        time_base = self.av_stream.time_base
        if time_base is None:
            raise VideoInputError(f"{self.source}: its video stream has no time base")
        return time_base

    def _frame_ticks(self) -> int:
        """One frame period in the stream's time base (25 fps where the rate is unknown)."""
        rate = self.av_stream.average_rate or self.av_stream.guessed_rate or FALLBACK_RATE
        return max(1, round(1 / (rate * self._time_base)))

    def _emit(self, frame: av.VideoFrame) -> bool:
        if self.colour is None:
            self.colour = colour_of(frame)
            self.rotation = int(frame.rotation or 0)
        if frame.pts is not None:
            pts = frame.pts + self._offset
        else:  # no timestamp (the first frame after a reconnect, say): one frame period after the last one
            pts = self._last_pts + self._frame_ticks() if self._last_pts is not None else self._offset
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + self._frame_ticks()  # keep strictly monotonic (broken inputs, reconnects)
        if self._first_pts is None:
            self._first_pts = pts
        time_base = self._time_base
        if self.duration is not None and float((pts - self._first_pts) * time_base) >= self.duration:
            return False
        self._last_pts = pts
        self.frames += 1
        seconds = float((pts - self._first_pts) * time_base)
        if self.live and not self.network:  # a file standing in for a camera: send at its own pace
            self._paced_from = self._paced_from or time.monotonic()
            wait = self._paced_from + seconds - time.monotonic()
            if wait > 0 and self.stop.wait(wait):
                return False
        received = time.monotonic()
        captured = self.clock.capture(seconds, received) if self.live else received
        decoded = decode(frame, self.colour, pts, time_base, received, captured, self.read_qp)
        if self.read_qp and not self.live and not self.qp_average.seeded:
            self._held.append(decoded)  # a live stream is never held back: its first frames are a moment of hours
            return len(self._held) < self.qp_average.window or self._release()
        if self.read_qp:
            decoded.compression = self.qp_average(decoded.compression)
        return self._put(decoded)

    def _release(self) -> bool:
        """Hand on the held first frames, each with their mean QP; False when stopped meanwhile."""
        held, self._held = self._held, []
        if not held:
            return True
        for frame, fact in zip(held, self.qp_average.seed([f.compression for f in held])):
            frame.compression = fact
            if not self._put(frame):
                return False
        return True

    def _session(self) -> bool:
        """Demux until the end or the stop flag; False when the duration limit ended it."""
        for packet in self.container.demux():
            if self.stop.is_set():
                return False
            if packet.stream.index == self.av_stream.index:
                for frame in self._frames(packet):
                    if not self._emit(frame):
                        return False
                if self.tap is not None:
                    self.tap(packet)
            elif packet.dts is not None and not self.network and not self._put(packet):
                return False
        return True

    def run(self) -> None:
        try:
            while True:
                try:
                    finished = self._session()
                    if finished and self.network and not self.stop.is_set():
                        raise _StreamEnded("the stream ended")
                    break
                except (av.error.FFmpegError, OSError, _StreamEnded) as exc:
                    if not self.network or self.stop.is_set():
                        raise VideoInputError(f"{self.source}: read failed ({exc})") from None
                    self._reconnect(exc)
                    if self.stop.is_set():  # stopped while reconnecting: an ending, not a failure
                        break
        except BaseException as exc:  # noqa: BLE001 - handed to the engine's thread, which raises it
            self.error = exc
        finally:
            if self.error is None:  # a clip shorter than the look-ahead, or one cut by -t
                self._release()
            self._put(END)
            with self._closing:
                self._ended = True
                close_now = self._close_on_exit
            if close_now:  # the owner gave up waiting for this thread: close here, never under a running demux
                self._close_container()

    def _reconnect(self, exc: BaseException) -> None:
        delay = 0.5
        attempts = itertools.count(1) if self.retries < 0 else range(1, self.retries + 1)
        for attempt in attempts:
            if self.stop.is_set():
                return
            of = "" if self.retries < 0 else f"/{self.retries}"
            log.warning("srstream: %s dropped (%s); reconnect %d%s in %.1fs", self.source, exc, attempt, of, delay)
            if self.stop.wait(delay):
                return
            self._close_container()
            try:
                container = open_input(self.source, self.timeout_s)
            except VideoInputError:
                delay = min(delay * 2, 8.0)
                continue
            with self._closing:
                self.container, self._closed = container, False
            if self.stop.is_set():
                return
            self.av_stream = self.container.streams.video[0]
            self._set_up_decoder()
            self._release()
            self.qp_average.reset()
            self.reconnects += 1
            # A restarted camera starts its clock again: continue one frame after the last timestamp we wrote.
            self._offset = (self._last_pts or 0) + self._frame_ticks() - (self.av_stream.start_time or 0)
            self.clock.reset()
            return
        raise VideoInputError(f"{self.source}: gave up after {self.retries} reconnects ({exc})")

    def _close_container(self) -> None:
        with self._closing:
            if self._closed:
                return
            self._closed = True
            try:
                self.container.close()
            except Exception:  # noqa: BLE001 - a dead connection may fail to close; it is gone either way
                pass

    def close(self) -> None:
        """Close the input (its packets in the buffer are dead after this): now if the thread never ran or has
        ended, else by the thread itself as it ends."""
        with self._closing:
            if self.ident is not None and not self._ended:
                self._close_on_exit = True
                return
        self._close_container()
