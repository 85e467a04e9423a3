"""One input and its output as the scheduler sees them: a `Stream` owns its decode thread (a `source.DecoderLike`), its
frame buffer and live policy, its output plan (pixel format and size, decided once from the first frame), its frame
maker, its sink and encode thread, and its Stats. The scheduler asks it for a ready frame, takes frames of one
kind from it and hands it the engine's output; everything else about the input stays here.

A Stream without an output (`output=None`, as `iter_upscaled` makes) hands its frames back as RGB at their own
upscaled size instead of encoding them.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, cast

import av
import numpy as np
import torch

from srstream.engine import Upscaler
from srstream.output_size import OutputSize
from srstream.video.buffer import FrameBuffer, oldest_worth_upscaling
from srstream.video.colour import Colour
from srstream.video.frames import END, Decoded, FrameMaker, Upscaled
from srstream.video.label import burn_label
from srstream.video.publisher import Publisher, SinkLike, Tee
from srstream.video.recurrent_state import StreamMemory
from srstream.video.settings import FALLBACK_RATE, Settings
from srstream.video.sink import (
    Encoder,
    OutputPlan,
    Sink,
    VideoOutputError,
    plan_output,
)
from srstream.video.source import Decoder, DecoderLike, VideoInputError, is_live
from srstream.video.stats import Stats

log = logging.getLogger("srstream.video")
LATENCY_SAMPLES = 5000  # the latest frames' latencies kept per input for the percentiles
CRASH_SAFE_AFTER_S = 60.0  # inputs at least this long are written crash-safe by default


class BatchKind(NamedTuple):
    """What the frames of one engine call share: format and size in, colour, and the size the engine makes."""

    frame_kind: tuple
    colour: Colour
    size_out: tuple[int, int]


@dataclass(frozen=True)
class Progress:
    """A live input's counts so far, for the status line."""

    seconds: float
    decoded: int
    written: int
    dropped: int
    reconnects: int
    latency: float | None  # of the last frame written


class Stream:
    """One input and its output: decoder, buffer, output plan, frame maker, sink and encoder, and what happened."""

    def __init__(
        self,
        source: str,
        output: str | Path | None,
        upscaler: Upscaler,
        settings: Settings,
        wakeup: threading.Condition,
        announce_failures: bool = False,
        latencies: collections.deque | None = None,
        tap: Callable[[av.Packet], None] | None = None,
    ) -> None:
        self.source, self.output, self.settings = source, output, settings
        self.scale = upscaler.scale
        self.announce_failures = announce_failures  # several inputs: say at once when one fails mid-run
        self.stats = Stats(
            input=source,
            output=None if output is None else str(output),
            backend=upscaler.backend_name,
            precision=upscaler.precision,
            model=upscaler.spec.name,
        )
        self.stop = threading.Event()
        self.maker: FrameMaker | None = None  # with the output plan, from the first frame
        self.sink: SinkLike | None = None
        self.publisher: Publisher | None = None  # the restream, where the settings ask for one
        self.encoder: Encoder | None = None
        self.encode_q: queue.Queue = queue.Queue(maxsize=max(2, settings.batch * 2))
        self.early_packets: list[av.Packet] = []
        self.finished = self._reading = False
        self.closed = threading.Event()  # set once close() has finished the output (and its segment list)
        self.started = time.perf_counter()
        self.started_monotonic = time.monotonic()
        self.exception: BaseException | None = None
        # the latencies of the frames written (a caller's deque may also feed a histogram)
        self.latencies = latencies if latencies is not None else collections.deque(maxlen=LATENCY_SAMPLES)
        self.live = is_live(source) if settings.live is None else settings.live
        # A live buffer holds what max_latency allows at up to 60 fps; a file's, a few batches.
        capacity = int(60 * settings.max_latency) + settings.batch if self.live else settings.batch * 3
        self.buffer = FrameBuffer(capacity, self.live, wakeup)
        self.memory = StreamMemory() if upscaler.spec.recurrent else None  # a recurrent model's state
        self.decoder: DecoderLike | None = None
        self.total: int | None = None
        self._open_decoder(upscaler, tap)

    def _open_decoder(self, upscaler: Upscaler, tap: Callable[[av.Packet], None] | None) -> None:
        """The input's decoder, and what it tells of the input (size, frame count); a failure is this stream's."""
        settings = self.settings
        try:
            self.decoder = Decoder(
                self.source,
                self.buffer,
                settings.duration,
                settings.retries,
                settings.timeout_s,
                self.stop,
                self.live,
                read_qp=upscaler.spec.descriptor.takes_qp,
                tap=tap,
            )
        except VideoInputError as exc:
            self.fail(exc)
            return
        self.stats.live = self.live
        codec = self.decoder.av_stream.codec_context
        self.stats.size_in = (codec.width, codec.height)
        self.total = self.decoder.av_stream.frames or None
        if settings.duration is not None and self.total:
            rate = self.decoder.av_stream.average_rate or FALLBACK_RATE
            self.total = min(self.total, round(settings.duration * rate))

    @property
    def active(self) -> bool:
        """Still running: not finished, failed or closed."""
        return not self.finished

    def start(self) -> None:
        """Start reading (once)."""
        if self.decoder is not None and not self._reading:
            self._reading = True
            self.decoder.start()

    def stop_reading(self) -> None:
        """Tell the decoder to stop; what it has queued is still there to be finished."""
        self.stop.set()

    def interrupt(self) -> None:
        """Ctrl-C: stop reading, and mark the output as cut short unless it had already ended."""
        if self.active:
            self.stats.interrupted = True
        self.stop_reading()

    def ready_frame(self, now: float, engine_seconds: float) -> Decoded | None:
        """The frame at the head of the buffer, ready for the engine: the packets before it passed to the output,
        stale live frames dropped (an engine call takes `engine_seconds`), the output opened at the first frame.
        None when there is none yet, or the input has just ended (then it is finished here)."""
        if not self.active or self._service() is None:
            return None
        if self.live:
            lag = self.encoder.lag if self.encoder is not None else 0.0
            if self.publisher is not None:  # a re-stream's frame is seen once published: the deadline is for that
                lag += min(self.publisher.lag, 0.25 * self.settings.max_latency)
            self.buffer.drop_stale(oldest_worth_upscaling(now, self.settings.max_latency, engine_seconds, lag))
        frame = self._service()
        if frame is not None and self.maker is None:
            try:
                self._open_output(frame)
            except (ValueError, OSError, av.error.FFmpegError) as exc:  # this output only: the others go on
                self.fail(exc)
                return None
        return frame

    def batch_kind(self, frame: Decoded) -> BatchKind:
        """What `frame` shares with the frames it can go through the engine with; known once the output is open."""
        return BatchKind(frame.kind, self._colour(), self._size_out(frame))

    def continuity(self) -> tuple[int, int]:
        """(reconnects, frames dropped) so far: a rise in either breaks a recurrent model's past."""
        return (self.decoder.reconnects if self.decoder is not None else 0), self.buffer.dropped

    def take(self, kind: BatchKind) -> Decoded | None:
        """Remove and return the head frame if it is of `kind`, else None."""
        item = self.buffer.pop_if(lambda item: isinstance(item, Decoded) and self.batch_kind(item) == kind)
        return cast("Decoded | None", item)  # what `wanted` let through

    def pixels(self, y: torch.Tensor) -> list[tuple[np.ndarray, ...] | torch.Tensor | np.ndarray]:
        """Per frame of the engine's (N, 3, H, W) output: what the encoder takes (or RGB, without an output)."""
        if self.maker is None:
            raise RuntimeError(f"{self.source}: engine output before the output was planned from the first frame")
        return self.maker.from_engine(y)

    def emit(self, frames: list[Decoded], y: torch.Tensor) -> None:
        """Hand the engine's output `y` for `frames` (this input's, in order) to the encoder."""
        if self.encoder is None:
            raise RuntimeError(f"{self.source}: no encoder to hand frames to (no output, or not opened yet)")
        if self.settings.label:
            y = burn_label(y, self.settings.label)
        for frame, pixels in zip(frames, self.pixels(y)):
            self.encode_q.put(Upscaled(pixels, frame.pts, frame.time_base, frame.captured))
        self.stats.frames_in += len(frames)
        if self.encoder.error is not None:
            self.close(keep=False)

    def progress(self) -> Progress | None:
        """Counts so far; None if the input never opened."""
        if self.decoder is None:
            return None
        return Progress(
            time.monotonic() - self.started_monotonic,
            self.decoder.frames,
            self.encoder.written if self.encoder else 0,
            self.buffer.dropped,
            self.decoder.reconnects,
            self.encoder.last_latency if self.encoder else None,
        )

    def fail(self, exc: BaseException) -> None:
        """Record the error; keep what was written (a camera that went away for good) or remove a useless file."""
        self.exception = exc
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        self.stats.error = message
        if self.announce_failures and self.sink is not None:  # the others go on; the summary repeats it
            log.warning("srstream: %s failed (%s); the other inputs go on", self.source, message)
        self.close(keep=True)

    def close(self, keep: bool = True) -> None:
        """Stop reading, flush the encoder and finish the output (a playable file), or drop it; a Ctrl-C that came
        meanwhile is raised again once the output is finished."""
        if self.finished:
            return
        self.finished = True
        self.stop.set()
        try:
            self._close(keep)
        finally:
            self.closed.set()

    def _close(self, keep: bool) -> None:
        written, interrupted = self._finish_output(keep)
        if self.decoder is not None:
            if self._reading:  # a stream closed before it started has no thread to wait for
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
        if self.maker is None and self.stats.error is None:
            self.stats.error = f"{self.source}: no video frames could be decoded"
        if interrupted:
            raise KeyboardInterrupt

    def crash_safe(self) -> bool:
        """Whether the output is written so that a killed process leaves it playable: as asked, else for live
        inputs and for inputs of CRASH_SAFE_AFTER_S or more (a length unknown counts as long)."""
        if self.settings.crash_safe is not None:
            return self.settings.crash_safe
        known = [s for s in (self.settings.duration, _length_s(self._opened().container)) if s]
        return self.live or not known or min(known) >= CRASH_SAFE_AFTER_S

    def _finish_output(self, keep: bool) -> tuple[int, bool]:
        """Flush the encoder and close (or abort) the sink; the frames written, and whether a Ctrl-C came while
        waiting for the encoder (the input had just ended): the output is finished all the same, since stopping
        there would leave its hidden temporary file behind, neither finished nor removed."""
        written, interrupted = 0, False
        if self.encoder is not None:
            self.encode_q.put(END)
            interrupted = _join_through_interrupts(self.encoder)
            written = self.encoder.written
            if self.encoder.error is not None and self.stats.error is None:
                self.stats.error = _write_error(self.output, self.encoder.error)
                self.exception = VideoOutputError(self.stats.error)
                keep = False
        if self.sink is not None:
            try:
                if keep and written > 0:
                    self.sink.close()
                else:
                    self.sink.abort(keep_written=written > 0)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                self.sink.abort(keep_written=written > 0)
                self.stats.error = self.stats.error or _write_error(self.output, exc)
            except KeyboardInterrupt:  # in the trailer's write: the file is not whole, so it goes
                self.sink.abort(keep_written=written > 0)
                raise
        return written, interrupted

    def _service(self) -> Decoded | None:
        """Move the packets and the end marker at the head of the buffer along; the frame now at its head."""
        while (item := self.buffer.head()) is not None:
            if isinstance(item, Decoded):
                return item
            self.buffer.pop()
            if item is END:
                error = self._opened().error
                if error is not None:
                    self.fail(error)
                else:
                    self.close(keep=True)
                return None
            self._passthrough(cast(av.Packet, item))  # the buffer holds frames, packets and END
        return None

    def _opened(self) -> DecoderLike:
        """The decoder, for what only an input that opened gets to."""
        if self.decoder is None:
            raise RuntimeError(f"{self.source}: the input did not open")
        return self.decoder

    def _colour(self) -> Colour:
        """The input's colour, which its decoder knows from the first frame on."""
        colour = self._opened().colour
        if colour is None:
            raise RuntimeError(f"{self.source}: no colour before the first frame")
        return colour

    def _passthrough(self, packet: av.Packet) -> None:
        if self.encoder is None:
            self.early_packets.append(packet)  # before the first frame fixes the colour the sink cannot open
        else:
            self.encode_q.put(packet)

    def _size_out(self, frame: Decoded) -> tuple[int, int]:
        if self.output is None:  # no encoder to fix one size: each frame at its own upscaled size
            return (self.settings.output_size or OutputSize()).resolve(*frame.size, self.scale)
        return self.stats.size_out

    def _open_output(self, first: Decoded) -> None:
        """Plan the output from the first frame (its size, the input's colour), open it and start its encoder."""
        colour = self._colour()
        size = (self.settings.output_size or OutputSize()).resolve(*first.size, self.scale)
        if self.output is None:
            self.stats.size_out = size
            self.maker = FrameMaker(None, colour, size)
            return
        plan = plan_output(self.settings.options, colour, size)
        self.stats.size_out = plan.size
        self.sink = self._open_sinks(self.output, plan, colour)
        self.maker = FrameMaker(plan.pix_fmt, colour, plan.size)
        self.encoder = Encoder(self.sink, self.maker, self.encode_q, self.latencies if self.live else None)
        self.encoder.start()
        for packet in self.early_packets:
            self.encode_q.put(packet)
        self.early_packets.clear()

    def _open_sinks(self, output: str | Path, plan: OutputPlan, colour: Colour) -> SinkLike:
        """The output's sink, with a Publisher beside it when the settings ask for a restream (or alone, where
        publishing is the output: it never fails the run)."""
        url = self.settings.restream
        if url is not None:
            max_age = self.settings.max_latency if self.live else None
            self.publisher = Publisher(url, lambda: self._sink(url, plan, colour, published=True), max_age)
            if str(output) == url:
                return self.publisher
        recording = self._sink(output, plan, colour)
        return recording if self.publisher is None else Tee([recording, self.publisher])

    def _sink(self, target: str | Path, plan: OutputPlan, colour: Colour, published: bool = False) -> Sink:
        """A Sink for `target`: the output as the settings ask, or a published stream (the picture alone, neither
        segmented nor crash-safe)."""
        segments = None if published else self.settings.segment_time
        listing = segment_list_of(Path(target)) if segments and self.settings.segment_list else None
        decoder = self._opened()
        return Sink(
            target,
            decoder.container,
            decoder.av_stream,
            plan,
            colour,
            segment_time=segments,
            rotation=decoder.rotation,
            crash_safe=False if published else self.crash_safe(),
            container=self.settings.container,
            metadata=self.settings.metadata,
            segment_list=listing,
            carry=not published,
        )


def segment_list_of(output: Path) -> Path:
    """Where the segment muxer lists the finished segments of `output` (hidden, beside them)."""
    return output.with_name(f".{output.stem}.segments.csv")


def _join_through_interrupts(thread: threading.Thread) -> bool:
    """Wait for `thread` to end even through Ctrl-C; whether one came meanwhile."""
    interrupted = False
    while True:
        try:
            thread.join()
            return interrupted
        except KeyboardInterrupt:
            interrupted = True


def _length_s(container: av.container.InputContainer) -> float | None:
    """The input's length in seconds as its container says, None where it does not (a pipe, a live stream)."""
    return container.duration / 1e6 if container.duration else None


def _write_error(output: str | Path | None, exc: BaseException) -> str:
    """One line naming the output the user asked for (not the hidden file written meanwhile) and why it failed."""
    reason = getattr(exc, "strerror", None) or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return f"{output}: cannot write ({reason})"
