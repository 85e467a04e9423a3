"""One engine for several inputs: each input has its decode thread and its encode thread; this thread takes frames
from all of them, batches frames of one kind (format, size, colour) across inputs into each engine call, and hands
every output to its own input's encoder.

Live inputs keep their latency bounded: before each call, frames that could no longer be written within
`max_latency` of their capture are dropped (counted), so the engine always works on recent frames. Files are never
dropped: their decoders wait instead. An input that fails is finished (or removed if it wrote nothing) and reported;
the others go on.
"""
from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av

from srstream.engine import Upscaler
from srstream.output_size import OutputSize, even
from srstream.video.buffer import FrameBuffer
from srstream.video.frames import Decoded, Upscaled, to_device_rgb
from srstream.video.sink import END as ENCODER_END
from srstream.video.sink import EncodeOptions, Encoder, Sink, choose_pix_fmt, subsampled_axes
from srstream.video.source import END, Decoder, VideoInputError, is_live
from srstream.video.stats import Stats

log = logging.getLogger("srstream.video")
LATENCY_SAMPLES = 5000  # the latest frames' latencies kept per input for the percentiles
LATENCY_MARGIN = 0.95  # of max_latency planned for, so that the 95th percentile stays within it


@dataclass(frozen=True)
class Settings:
    """How every input of one run is read, upscaled and written."""

    options: EncodeOptions
    batch: int = 4
    duration: float | None = None
    retries: int = 5
    timeout_s: float = 10.0
    segment_time: float | None = None
    output_size: OutputSize | None = None
    live: bool | None = None  # None: live for network streams, not for files
    max_latency: float = 2.0


class Stream:
    """One input and its output: decoder, buffer, sink and encoder, and what happened to them."""

    def __init__(self, source: str, output: str | Path, upscaler: Upscaler, settings: Settings,
                 wakeup: threading.Condition, announce_failures: bool = False) -> None:
        self.source, self.output, self.settings = source, output, settings
        self.announce_failures = announce_failures  # several inputs: say at once when one fails mid-run
        self.stats = Stats(input=source, output=str(output), backend=upscaler.backend_name,
                           precision=upscaler.precision, model=upscaler.spec.name)
        self.stop = threading.Event()
        self.sink: Sink | None = None
        self.encoder: Encoder | None = None
        self.encode_q: queue.Queue = queue.Queue(maxsize=max(2, settings.batch * 2))
        self.early_packets: list[av.Packet] = []
        self.finished = False
        self.started = time.perf_counter()
        self.started_monotonic = time.monotonic()
        self.exception: BaseException | None = None
        self.latencies: collections.deque = collections.deque(maxlen=LATENCY_SAMPLES)
        try:
            live = is_live(source) if settings.live is None else settings.live
            # A live buffer holds what max_latency allows at up to 60 fps; a file's, a few batches.
            capacity = int(60 * settings.max_latency) + settings.batch if live else settings.batch * 3
            self.buffer = FrameBuffer(capacity, live, wakeup)
            self.decoder = Decoder(source, self.buffer, settings.duration, settings.retries, settings.timeout_s,
                                   self.stop, live)
        except VideoInputError as exc:
            self.decoder = None
            self.fail(exc)
            return
        self.live = live
        codec = self.decoder.stream.codec_context
        self.stats.size_in = (codec.width, codec.height)
        self.stats.size_out = (codec.width * upscaler.scale, codec.height * upscaler.scale)
        self.stats.live = live
        self.total = self.decoder.stream.frames or None
        if settings.duration is not None and self.total:
            self.total = min(self.total, int(round(settings.duration * (self.decoder.stream.average_rate or 25))))

    @property
    def active(self) -> bool:
        """Still running: not finished, failed or closed."""
        return not self.finished

    def start(self) -> None:
        """Start reading (once)."""
        if self.decoder is not None and not self.decoder.is_alive() and self.decoder.ident is None:
            self.decoder.start()

    def passthrough(self, packet: av.Packet) -> None:
        """Hand a packet of another stream (audio, subtitles) to the output's muxer, in demux order."""
        if self.encoder is None:
            self.early_packets.append(packet)  # before the first frame fixes the colour the sink cannot open
        else:
            self.encode_q.put(packet)

    def open_sink(self, first: Decoded, upscaler: Upscaler) -> None:
        """Open the output and start its encoder, sized and coloured from the first frame."""
        colour = self.decoder.colour
        w, h = first.size
        options = self.settings.options
        self.stats.size_out = _output_size(self.settings.output_size or OutputSize(), w, h, upscaler.scale,
                                           choose_pix_fmt(options, colour))
        self.sink = Sink(self.output, self.decoder.container, self.decoder.stream, self.stats.size_out, colour,
                         options, segment_time=self.settings.segment_time, rotation=self.decoder.rotation)
        self.encoder = Encoder(self.sink, self.encode_q, self.latencies if self.live else None)
        self.encoder.start()
        for packet in self.early_packets:
            self.encode_q.put(packet)
        self.early_packets.clear()

    def fail(self, exc: BaseException) -> None:
        """Record the error; keep what was written (a camera that went away for good) or remove a useless file."""
        self.exception = exc
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.stats.error = message
        if self.announce_failures and self.sink is not None:  # the others go on; the summary repeats it
            log.warning("srstream: %s failed (%s); the other inputs go on", self.source, message)
        self.close(keep=True)

    def close(self, keep: bool = True) -> None:
        """Stop reading, flush the encoder and finish the output (a playable file), or drop it."""
        if self.finished:
            return
        self.finished = True
        self.stop.set()
        written = 0
        if self.encoder is not None:
            self.encode_q.put(ENCODER_END)
            self.encoder.join()
            written = self.encoder.written
            if self.encoder.error is not None and self.stats.error is None:
                self.exception = self.encoder.error
                self.stats.error = str(self.encoder.error).splitlines()[0] or type(self.encoder.error).__name__
                keep = False
        if self.sink is not None:
            try:
                if keep and written > 0:
                    self.sink.close()
                else:
                    self.sink.abort()
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                self.sink.abort()
                self.stats.error = self.stats.error or f"{self.output}: could not finish ({exc})"
        if self.decoder is not None:
            self.decoder.join(timeout=5)
            self.decoder.close()
            self.stats.reconnects = self.decoder.reconnects
            self.stats.dropped_frames = self.buffer.dropped
        self.stats.frames_out = written
        self.stats.seconds = round(time.perf_counter() - self.started, 3)
        self.stats.fps = round(written / self.stats.seconds, 2) if self.stats.seconds else 0.0
        if self.sink is not None:
            self.stats.streams_copied = self.sink.carried.copied
            self.stats.streams_reencoded = self.sink.carried.reencoded
            self.stats.streams_dropped = self.sink.carried.dropped
        self.stats.set_latency(list(self.latencies))
        if self.sink is None and self.stats.error is None:
            self.stats.error = f"{self.source}: no video frames could be decoded"


class Scheduler:
    """Runs the engine for several Streams until all have ended (or on interrupt, finishes them all). With
    `waiting`, a callable giving the next Stream (or None), a new input starts whenever one ends, so that
    `concurrency` inputs run at once (srstream batch)."""

    def __init__(self, streams: list[Stream], upscaler: Upscaler, settings: Settings,
                 wakeup: threading.Condition, on_batch: Callable[[Stream, int], None] | None = None,
                 waiting: Callable[[], Stream | None] | None = None, concurrency: int = 0) -> None:
        self.streams, self.upscaler, self.settings, self.wakeup = streams, upscaler, settings, wakeup
        self.on_batch = on_batch or (lambda stream, n: None)
        self.batch_seconds = 0.0  # moving average of one engine call, for the live deadline
        self.waiting, self.concurrency = waiting, concurrency

    def _refill(self) -> None:
        while self.waiting is not None and sum(s.active for s in self.streams) < self.concurrency:
            stream = self.waiting()
            if stream is None:
                self.waiting = None
                return
            self.streams.append(stream)
            stream.start()

    def _service(self, stream: Stream) -> bool:
        """Move packets and the end marker at the head of one buffer; True if a frame is now at its head."""
        while (item := stream.buffer.head()) is not None:
            if isinstance(item, Decoded):
                return True
            stream.buffer.pop()
            if item is END:
                error = stream.decoder.error
                if error is not None:
                    stream.fail(error)
                else:
                    stream.close(keep=True)
                return False
            stream.passthrough(item)
        return False

    def _drop_stale(self, stream: Stream, now: float) -> None:
        if stream.live:
            # Whatever cannot be written within max_latency of its capture any more is not worth the engine's time:
            # it would still need an engine call and its encoder's lag (queue and encoding), with a little margin.
            lag = stream.encoder.lag if stream.encoder is not None else 0.0
            budget = self.settings.max_latency * LATENCY_MARGIN - self.batch_seconds - lag
            stream.buffer.drop_stale(now - budget)

    def _gather(self) -> list[tuple[Stream, Decoded]]:
        now = time.monotonic()
        ready = []
        for stream in self.streams:
            if stream.active and self._service(stream):
                self._drop_stale(stream, now)
                if not self._service(stream):
                    continue
                if stream.sink is None:
                    try:
                        stream.open_sink(stream.buffer.head(), self.upscaler)
                    except (ValueError, OSError, av.error.FFmpegError) as exc:  # this output only: the rest go on
                        stream.fail(exc)
                        continue
                ready.append(stream)
        if not ready:
            return []
        # The oldest waiting frame decides the kind of this call; frames of that kind from other inputs ride along.
        ready.sort(key=lambda s: s.buffer.head().captured)
        kind = _kind(ready[0], ready[0].buffer.head())
        # One frame from each input in turn, so that every camera gets its share of a busy engine.
        taken: dict[Stream, list[Decoded]] = {stream: [] for stream in ready}
        open_streams, count = list(ready), 0
        while open_streams and count < self.settings.batch:
            for stream in list(open_streams):
                if count == self.settings.batch:
                    break
                frame = stream.buffer.pop_if(lambda item: isinstance(item, Decoded) and _kind(stream, item) == kind)
                if frame is None:
                    open_streams.remove(stream)
                else:
                    taken[stream].append(frame)
                    count += 1
        return [(stream, frame) for stream in ready for frame in taken[stream]]

    def run(self) -> None:
        for stream in self.streams:
            stream.start()
        first_sizes = {s.stats.size_in for s in self.streams if s.decoder is not None}
        for w, h in first_sizes:  # while the decoders start: the engine's graphs for what will come
            self.upscaler.prepare(h, w, min(self.settings.batch, self.upscaler.batch_size))
        try:
            while True:
                self._refill()
                if not any(s.active for s in self.streams):
                    break
                group = self._gather()
                if not group:
                    with self.wakeup:
                        self.wakeup.wait(0.05)
                    continue
                self._upscale(group)
        except KeyboardInterrupt:
            for stream in self.streams:
                if stream.active:  # those already finished were complete
                    stream.stats.interrupted = True
                stream.stop.set()
            log.warning("srstream: interrupted; finishing the outputs with the frames so far")
            raise
        finally:
            for stream in self.streams:
                stream.stop.set()
            for stream in self.streams:
                stream.close(keep=True)

    def _upscale(self, group: list[tuple[Stream, Decoded]]) -> None:
        first_stream, first = group[0]
        started = time.perf_counter()
        frames = [d for _, d in group]
        y = self.upscaler.upscale_tensor(to_device_rgb(frames, self.upscaler, first_stream.decoder.colour),
                                         first_stream.stats.size_out)
        elapsed = time.perf_counter() - started
        self.batch_seconds = elapsed if not self.batch_seconds else 0.8 * self.batch_seconds + 0.2 * elapsed
        start = 0
        while start < len(group):  # consecutive frames of one stream go out together
            stream = group[start][0]
            end = start
            while end < len(group) and group[end][0] is stream:
                end += 1
            if stream.active:
                outputs = stream.sink.maker.from_engine(y[start:end])
                for (_, d), pixels in zip(group[start:end], outputs):
                    stream.encode_q.put(Upscaled(pixels, d.pts, d.time_base, d.captured))
                stream.stats.frames_in += end - start
                self.on_batch(stream, end - start)
                if stream.encoder.error is not None:
                    stream.close(keep=False)
            start = end


def _kind(stream: Stream, frame: Decoded) -> tuple:
    """Frames that can share an engine call: same format and size in, same colour, same size out."""
    return frame.kind, stream.decoder.colour, stream.stats.size_out


def _output_size(asked: OutputSize, width: int, height: int, scale: int, pix_fmt: str) -> tuple[int, int]:
    """The frame size to encode: what was asked, rounded to even on the axes `pix_fmt` subsamples."""
    size = asked.resolve(width, height, scale)
    even_w, even_h = subsampled_axes(pix_fmt)
    rounded = (even(size)[0] if even_w else size[0], even(size)[1] if even_h else size[1])
    if rounded != size:
        log.warning("srstream: output size %dx%d rounded to %dx%d (%s needs even sides)", *size, *rounded, pix_fmt)
    return rounded
