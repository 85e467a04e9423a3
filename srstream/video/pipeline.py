"""decode -> batch -> engine -> encode -> mux, as threads joined by bounded queues (memory stays flat).

The decode thread (`source.Decoder`) demuxes every stream: video frames are queued as their YUV planes (or RGB
where swscale must convert), other packets as they are, in demux order. The calling thread batches frames, moves
them to the engine's device, converts them to RGB there, upscales and hands the result to the encode thread
(`sink.Encoder`), which makes encoder-ready frames and muxes the other packets untouched. Every output frame keeps
its input frame's pts and time base.
"""
from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import av
from tqdm import tqdm

from srstream.engine import Upscaler
from srstream.output_size import OutputSize, even
from srstream.video.frames import Decoded, Upscaled, to_device_rgb, to_rgb_array
from srstream.video.sink import END as ENCODER_END
from srstream.video.sink import EncodeOptions, Encoder, Sink, choose_pix_fmt, is_url, segment_pattern, subsampled_axes
from srstream.video.source import END, Decoder, VideoInputError, classify

log = logging.getLogger("srstream.video")


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


def _batches(frames: queue.Queue, batch: int, passthrough) -> Iterator[list[Decoded]]:
    """Groups of up to `batch` frames of one kind (format and size), in order; packets go to `passthrough`."""
    pending: list[Decoded] = []
    while True:
        item = frames.get()
        if item is END:
            break
        if isinstance(item, Decoded):
            if pending and item.kind != pending[0].kind:
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
    """Upscaled frames of `source` as `Decoded` (`.rgb` uint8, or uint16 for deep input; pts, time base), in
    order; other streams ignored. `output_size` resamples them to the size asked for."""
    stop = threading.Event()
    frames: queue.Queue = queue.Queue(maxsize=batch * 3)
    decoder = Decoder(source, frames, duration, retries, timeout_s, stop)
    decoder.start()
    try:
        codec = decoder.stream.codec_context
        upscaler.prepare(codec.height, codec.width, min(batch, upscaler.batch_size))
        for group in _batches(frames, batch, lambda packet: None):
            w, h = group[0].size
            size = (output_size or OutputSize()).resolve(w, h, upscaler.scale)
            y = upscaler.upscale_tensor(to_device_rgb(group, upscaler, decoder.colour), size)
            for d, rgb in zip(group, to_rgb_array(y, deep=decoder.colour.bits > 8)):
                yield Decoded(d.pts, d.time_base, rgb=rgb, received=d.received)
        if decoder.error:
            raise decoder.error
    finally:
        stop.set()
        decoder.join(timeout=5)
        decoder.close()


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
    decoder = Decoder(source, frames, duration, retries, timeout_s, stop)
    in_stream = decoder.stream
    stats.size_in = (in_stream.codec_context.width, in_stream.codec_context.height)
    stats.size_out = (stats.size_in[0] * upscaler.scale, stats.size_in[1] * upscaler.scale)
    total = in_stream.frames or None
    if duration is not None and total:
        rate = in_stream.average_rate or 25
        total = min(total, int(round(duration * rate)))
    sink: Sink | None = None
    encoder: Encoder | None = None
    encode_q: queue.Queue = queue.Queue(maxsize=batch * 3)
    early_packets: list[av.Packet] = []
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None
    if previous is not None:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    bar = tqdm(total=total, unit="frame", desc="upscaling", disable=not progress, dynamic_ncols=True)
    started = time.perf_counter()
    decoder.start()
    upscaler.prepare(stats.size_in[1], stats.size_in[0], min(batch, upscaler.batch_size))  # while decoding starts

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
                    w, h = group[0].size
                    size = _output_size(output_size or OutputSize(), w, h, upscaler.scale,
                                        choose_pix_fmt(options, colour))
                    stats.size_out = size
                    sink = Sink(output, decoder.container, in_stream, size,
                                colour, options, segment_time=segment_time, rotation=decoder.rotation)
                    encoder = Encoder(sink, encode_q)
                    encoder.start()
                    for packet in early_packets:
                        encode_q.put(packet)
                    early_packets.clear()
                y = upscaler.upscale_tensor(to_device_rgb(group, upscaler, decoder.colour), stats.size_out)
                for d, pixels in zip(group, sink.maker.from_engine(y)):
                    encode_q.put(Upscaled(pixels, d.pts, d.time_base, d.received))
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
        encode_q.put(ENCODER_END)
        encoder.join()
        if encoder.error:
            raise encoder.error
        if encoder.written == 0:  # interrupted before the first frame: an empty file would not play
            raise KeyboardInterrupt
        sink.close()
    except BaseException:
        stop.set()
        if encoder is not None and encoder.is_alive():
            encode_q.put(ENCODER_END)
            encoder.join(timeout=10)
        if sink is not None:
            sink.abort()
        raise
    finally:
        stop.set()
        bar.close()
        decoder.join(timeout=5)
        decoder.close()
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
