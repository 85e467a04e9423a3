"""decode -> batch -> engine -> encode -> mux, as threads joined by bounded queues (memory stays flat).

The decode thread demuxes every stream: video frames are converted to RGB with the input's matrix and range and
queued; other packets are queued as they are, in demux order, and the encode thread muxes them untouched. The
calling thread runs the engine on batches. Every output frame keeps its input frame's pts and time base.
"""
from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from tqdm import tqdm

from srstream.engine import Upscaler
from srstream.output_size import OutputSize, even
from srstream.video.colour import Colour, colour_of, from_rgb, to_rgb
from srstream.video.sink import EncodeOptions, Sink, choose_pix_fmt, is_url, segment_pattern, subsampled_axes
from srstream.video.source import VideoInputError, classify, open_input

log = logging.getLogger("srstream.video")
_END = object()


class _StreamEnded(Exception):
    """A live stream stopped sending: treated like a dropped connection."""


@dataclass
class Stats:
    """What a run did; `--json` prints it."""

    input: str
    output: str | None
    frames_in: int = 0
    frames_out: int = 0
    seconds: float = 0.0
    fps: float = 0.0
    backend: str = ""
    precision: str = ""
    model: str = ""
    size_in: tuple[int, int] = (0, 0)
    size_out: tuple[int, int] = (0, 0)
    reconnects: int = 0
    dropped_frames: int = 0
    streams_copied: list[str] = field(default_factory=list)
    streams_reencoded: list[str] = field(default_factory=list)
    streams_dropped: list[str] = field(default_factory=list)
    interrupted: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Decoded:
    rgb: np.ndarray
    pts: int
    time_base: Fraction


class _Decoder(threading.Thread):
    """Demuxes the input into a queue of `Decoded` frames and passthrough packets; reconnects live streams."""

    def __init__(self, source: str, out: queue.Queue, duration: float | None, retries: int, timeout_s: float,
                 stop: threading.Event) -> None:
        super().__init__(daemon=True, name="srstream-decode")
        self.source, self.out, self.duration, self.retries = source, out, duration, retries
        self.timeout_s, self.stop = timeout_s, stop
        self.live = classify(source).kind == "stream"
        self.container = open_input(source, timeout_s)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.colour: Colour | None = None
        self.rotation = 0  # counter-clockwise degrees from the input's display matrix
        self.error: BaseException | None = None
        self.reconnects = 0
        self.frames = 0
        self._offset = 0  # added to pts after a reconnect, so timestamps keep rising
        self._last_pts: int | None = None

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _frames(self, packet: av.Packet) -> Iterator[av.VideoFrame]:
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            log.warning("srstream: skipped an undecodable packet in %s", self.source)

    def _frame_ticks(self) -> int:
        """One frame period in the stream's time base (25 fps where the rate is unknown)."""
        rate = self.stream.average_rate or self.stream.guessed_rate or Fraction(25)
        return max(1, round(1 / (rate * self.stream.time_base)))

    def _emit(self, frame: av.VideoFrame) -> bool:
        if self.colour is None:
            self.colour = colour_of(frame)
            self.rotation = int(frame.rotation or 0)
        pts = frame.pts if frame.pts is not None else (self._last_pts or -1) + 1
        pts += self._offset
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + self._frame_ticks()  # keep strictly monotonic (broken inputs, reconnects)
        if self.duration is not None and self.frames > 0 and \
                float((pts - (self.stream.start_time or 0)) * self.stream.time_base) >= self.duration:
            return False
        self._last_pts = pts
        self.frames += 1
        return self._put(Decoded(to_rgb(frame, self.colour), pts, self.stream.time_base))

    def _session(self) -> bool:
        """Demux until the end or the stop flag; False when the duration limit ended it."""
        for packet in self.container.demux():
            if self.stop.is_set():
                return False
            if packet.stream.index == self.stream.index:
                for frame in self._frames(packet):
                    if not self._emit(frame):
                        return False
            elif packet.dts is not None and not self.live:
                if not self._put(packet):
                    return False
        return True

    def run(self) -> None:
        try:
            while True:
                try:
                    finished = self._session()
                    if finished and self.live and not self.stop.is_set():
                        raise _StreamEnded("the stream ended")
                    break
                except (av.error.FFmpegError, OSError, _StreamEnded) as exc:
                    if not self.live or self.stop.is_set():
                        raise VideoInputError(f"{self.source}: read failed ({exc})") from None
                    self._reconnect(exc)
        except BaseException as exc:  # handed to the main thread, which raises it
            self.error = exc
        finally:
            self._put(_END)

    def _reconnect(self, exc: BaseException) -> None:
        delay = 0.5
        for attempt in range(1, self.retries + 1):
            if self.stop.is_set():
                return
            log.warning("srstream: %s dropped (%s); reconnect %d/%d in %.1fs", self.source, exc, attempt,
                        self.retries, delay)
            time.sleep(delay)
            try:
                self.container.close()
            except Exception:  # the old connection is dead anyway
                pass
            try:
                self.container = open_input(self.source, self.timeout_s)
            except VideoInputError:
                delay = min(delay * 2, 8.0)
                continue
            self.stream = self.container.streams.video[0]
            self.stream.thread_type = "AUTO"
            self.reconnects += 1
            # A restarted camera starts its clock again: continue one frame after the last timestamp we wrote.
            self._offset = (self._last_pts or 0) + self._frame_ticks() - (self.stream.start_time or 0)
            return
        raise VideoInputError(f"{self.source}: gave up after {self.retries} reconnects ({exc})")


def _batches(frames: queue.Queue, batch: int, passthrough) -> Iterator[list[Decoded]]:
    pending: list[Decoded] = []
    while True:
        item = frames.get()
        if item is _END:
            break
        if isinstance(item, Decoded):
            if pending and item.rgb.shape != pending[0].rgb.shape:
                yield pending
                pending = []
            pending.append(item)
            if len(pending) == batch:
                yield pending
                pending = []
        else:
            passthrough(item)
    if pending:
        yield pending


def iter_upscaled(source: str, upscaler: Upscaler, batch: int = 4, duration: float | None = None,
                  retries: int = 5, timeout_s: float = 10.0, output_size: OutputSize | None = None
                  ) -> Iterator[Decoded]:
    """Upscaled frames of `source` as `Decoded` (RGB array, pts, time base), in order; other streams ignored.
    `output_size` resamples them to the size asked for."""
    stop = threading.Event()
    frames: queue.Queue = queue.Queue(maxsize=batch * 3)
    decoder = _Decoder(source, frames, duration, retries, timeout_s, stop)
    decoder.start()
    try:
        for group in _batches(frames, batch, lambda packet: None):
            h, w = group[0].rgb.shape[:2]
            size = (output_size or OutputSize()).resolve(w, h, upscaler.scale)
            out = upscaler.upscale(np.stack([d.rgb for d in group]), size)
            for d, rgb in zip(group, out):
                yield Decoded(rgb, d.pts, d.time_base)
        if decoder.error:
            raise decoder.error
    finally:
        stop.set()
        decoder.join(timeout=5)
        decoder.container.close()


class _Encoder(threading.Thread):
    def __init__(self, sink: Sink, items: queue.Queue, pix_fmt: str, colour: Colour) -> None:
        super().__init__(daemon=True, name="srstream-encode")
        self.sink, self.items, self.pix_fmt, self.colour = sink, items, pix_fmt, colour
        self.error: BaseException | None = None
        self.written = 0

    def run(self) -> None:
        try:
            while (item := self.items.get()) is not _END:
                if isinstance(item, Decoded):
                    frame = from_rgb(item.rgb, self.pix_fmt, self.colour)
                    frame.pts, frame.time_base = item.pts, item.time_base
                    self.sink.write(frame)
                    self.written += 1
                else:
                    self.sink.mux_packet(item)
        except BaseException as exc:
            self.error = exc
            while self.items.get() is not _END:  # keep draining so the producer never blocks
                pass


def upscale_video(source: str, output: str | Path, upscaler: Upscaler, options: EncodeOptions | None = None,
                  batch: int = 4, duration: float | None = None, overwrite: bool = False, progress: bool = True,
                  retries: int = 5, timeout_s: float = 10.0, segment_time: float | None = None,
                  output_size: OutputSize | None = None) -> Stats:
    """Upscale every frame of `source` into `output` (a file, segments with `segment_time`, or a URL to push to),
    keeping timing, colour and the other streams; one call. `output_size` (a factor or WxH) resamples the model's
    output; sizes a subsampled pixel format cannot hold are rounded to even, with a log line."""
    if not is_url(str(output)):
        output = Path(output)
        first = Path(str(segment_pattern(output)) % 0) if segment_time else output
        if first.exists() and not overwrite:
            raise FileExistsError(f"{first}: already exists (use -y/--overwrite to replace it)")
        if classify(source).kind == "file" and Path(source).resolve() == output.resolve():
            raise ValueError(f"{output}: output would overwrite the input")
    options = options or EncodeOptions()
    stats = Stats(input=source, output=str(output), backend=upscaler.backend_name, precision=upscaler.precision,
                  model=upscaler.spec.name)
    stop = threading.Event()
    frames: queue.Queue = queue.Queue(maxsize=batch * 3)
    decoder = _Decoder(source, frames, duration, retries, timeout_s, stop)
    in_stream = decoder.stream
    stats.size_in = (in_stream.codec_context.width, in_stream.codec_context.height)
    stats.size_out = (stats.size_in[0] * upscaler.scale, stats.size_in[1] * upscaler.scale)
    total = in_stream.frames or None
    if duration is not None and total:
        rate = in_stream.average_rate or 25
        total = min(total, int(round(duration * rate)))
    sink: Sink | None = None
    encoder: _Encoder | None = None
    encode_q: queue.Queue = queue.Queue(maxsize=batch * 3)
    early_packets: list[av.Packet] = []
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if previous is not None:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    bar = tqdm(total=total, unit="frame", desc="upscaling", disable=not progress, dynamic_ncols=True)
    started = time.perf_counter()
    decoder.start()

    def passthrough(packet) -> None:
        if encoder is None:
            early_packets.append(packet)  # before the first frame fixes the colour we cannot open the sink
        else:
            encode_q.put(packet)

    try:
        try:
            for group in _batches(frames, batch, passthrough):
                if sink is None:
                    colour = decoder.colour
                    h, w = group[0].rgb.shape[:2]
                    size = _output_size(output_size or OutputSize(), w, h, upscaler.scale,
                                        choose_pix_fmt(options, colour))
                    stats.size_out = size
                    sink = Sink(output, decoder.container, in_stream, size,
                                colour, options, segment_time=segment_time, rotation=decoder.rotation)
                    encoder = _Encoder(sink, encode_q, sink.pix_fmt, colour)
                    encoder.start()
                    for packet in early_packets:
                        encode_q.put(packet)
                    early_packets.clear()
                out = upscaler.upscale(np.stack([d.rgb for d in group]), stats.size_out)
                for d, rgb in zip(group, out):
                    encode_q.put(Decoded(rgb, d.pts, d.time_base))
                stats.frames_in += len(group)
                bar.update(len(group))
                if encoder.error:
                    raise encoder.error
        except KeyboardInterrupt:
            stats.interrupted = True
            stop.set()
            log.warning("srstream: interrupted; finishing %s with the frames so far", output)
        if decoder.error and not stats.interrupted:
            raise decoder.error
        if sink is None:
            raise VideoInputError(f"{source}: no video frames could be decoded")
        encode_q.put(_END)
        encoder.join()
        if encoder.error:
            raise encoder.error
        if encoder.written == 0:  # interrupted before the first frame: an empty file would not play
            raise KeyboardInterrupt
        sink.close()
    except BaseException:
        stop.set()
        if encoder is not None and encoder.is_alive():
            encode_q.put(_END)
            encoder.join(timeout=10)
        if sink is not None:
            sink.abort()
        raise
    finally:
        stop.set()
        bar.close()
        decoder.join(timeout=5)
        try:
            decoder.container.close()
        except Exception:  # already closed by a failed reconnect
            pass
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    stats.frames_out = encoder.written
    stats.seconds = round(time.perf_counter() - started, 3)
    stats.fps = round(stats.frames_out / stats.seconds, 2) if stats.seconds else 0.0
    stats.reconnects = decoder.reconnects
    stats.dropped_frames = stats.frames_in - stats.frames_out
    stats.streams_copied = sink.carried.copied
    stats.streams_reencoded = sink.carried.reencoded
    stats.streams_dropped = sink.carried.dropped
    return stats


def _output_size(asked: OutputSize, width: int, height: int, scale: int, pix_fmt: str) -> tuple[int, int]:
    """The frame size to encode: what was asked, rounded to even on the axes `pix_fmt` subsamples."""
    size = asked.resolve(width, height, scale)
    even_w, even_h = subsampled_axes(pix_fmt)
    rounded = (even(size)[0] if even_w else size[0], even(size)[1] if even_h else size[1])
    if rounded != size:
        log.warning("srstream: output size %dx%d rounded to %dx%d (%s needs even sides)", *size, *rounded, pix_fmt)
    return rounded


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
