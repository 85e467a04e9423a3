"""The output: how it is encoded (`plan_output`, once per output: pixel format, size, an encoder that opens here),
the container (`Sink`: the upscaled video stream encoded, other streams copied, written under a temporary name),
and the encode thread that feeds it (`Encoder`).

Audio, subtitle and data packets are muxed untouched where the output container accepts their codec; audio it does
not accept is re-encoded to AAC (and the summary says so); what cannot be carried is listed as dropped.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import re
import threading
import time
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import av
from av.audio.stream import AudioStream
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType
from av.video.stream import VideoStream

from srstream.output_size import even
from srstream.video.colour import Colour
from srstream.video.frames import END, FrameMaker, Upscaled
from srstream.video.settings import FALLBACK_RATE, EncodeOptions
from training.errors import SrstreamError

if TYPE_CHECKING:
    from srstream.video.publisher import SinkLike

log = logging.getLogger("srstream.video")
# Where NVENC is asked for but the GPU has none (H100/H200 have none; neither has a machine without an NVIDIA GPU).
NVENC_FALLBACK = {"h264_nvenc": "libx264", "hevc_nvenc": "libx265", "av1_nvenc": "libsvtav1"}

TEN_BIT = {
    "libx264": "yuv420p10le",
    "libx265": "yuv420p10le",
    "libsvtav1": "yuv420p10le",
    "libvpx-vp9": "yuv420p10le",
    "hevc_nvenc": "p010le",
}


def is_nvenc_preset(preset: str) -> bool:
    """NVENC's presets are p1 (fastest) to p7; x264's names (placebo included) are not."""
    return re.fullmatch(r"p[1-7]", preset) is not None


@dataclass
class CarriedStreams:
    copied: list[str] = field(default_factory=list)
    reencoded: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def choose_pix_fmt(options: EncodeOptions, colour: Colour) -> str:
    """The output pixel format: the user's, else 10-bit for deep input where the codec has it, else yuv420p."""
    if options.pix_fmt:
        return options.pix_fmt
    if colour.bits > 8 and options.codec in TEN_BIT:
        return TEN_BIT[options.codec]
    return "yuv420p"


def subsampled_axes(pix_fmt: str) -> tuple[bool, bool]:
    """(width, height): whether `pix_fmt` stores chroma at half resolution along that axis (then the side must be
    even), as 4:2:0 (both) and 4:2:2 (width) do."""
    probe = av.VideoFormat(pix_fmt, 3, 3)
    return (any(c.width != 3 for c in probe.components), any(c.height != 3 for c in probe.components))


PUSH_FORMATS = {
    "rtsp://": "rtsp",
    "rtmp://": "flv",
    "rtmps://": "flv",
    "udp://": "mpegts",
    "srt://": "mpegts",
    "tcp://": "mpegts",
}


def is_url(target: str) -> bool:
    """True for outputs pushed to a server rather than written to a file."""
    return target.startswith(tuple(PUSH_FORMATS))


def segment_pattern(path: Path) -> Path:
    """OUT with a segment counter: NAME_%03d.EXT unless it already has a printf counter."""
    return path if "%" in path.name else path.with_name(f"{path.stem}_%03d{path.suffix}")


def rounded_for(pix_fmt: str, size: tuple[int, int]) -> tuple[int, int]:
    """`size` rounded to even on the axes `pix_fmt` subsamples (with a log line when that changed it)."""
    even_w, even_h = subsampled_axes(pix_fmt)
    rounded = (even(size)[0] if even_w else size[0], even(size)[1] if even_h else size[1])
    if rounded != size:
        log.warning("srstream: output size %dx%d rounded to %dx%d (%s needs even sides)", *size, *rounded, pix_fmt)
    return rounded


@dataclass(frozen=True)
class OutputPlan:
    """How one output is encoded, decided once from its first frame: encoder settings that open here, the pixel
    format and the frame size."""

    options: EncodeOptions
    pix_fmt: str
    size: tuple[int, int]


def plan_output(options: EncodeOptions, colour: Colour, size: tuple[int, int]) -> OutputPlan:
    """The plan for frames of `size` (what was asked, rounded for the pixel format); an NVENC encoder that cannot
    open here gives way to its software fallback, with a log line."""
    pix_fmt = choose_pix_fmt(options, colour)
    size = rounded_for(pix_fmt, size)
    fallback = NVENC_FALLBACK.get(options.codec)
    if fallback and not _encoder_opens(options.codec, size, pix_fmt):
        log.warning(
            "srstream: %s cannot open here (no NVENC: H100/H200 and machines without an NVIDIA GPU "
            "have none); encoding with %s",
            options.codec,
            fallback,
        )
        preset = options.preset if not is_nvenc_preset(options.preset) else EncodeOptions.preset
        options = replace(options, codec=fallback, preset=preset)
        pix_fmt = choose_pix_fmt(options, colour)  # the fallback may have 10-bit where NVENC has not (libx264)
    return OutputPlan(options, pix_fmt, size)


STDOUT = "-"  # the output name that means standard output


class VideoOutputError(SrstreamError, OSError):
    """An output cannot be written (a full disk, a closed pipe): its message names the output asked for."""


DEFAULT_PIPE_FORMAT = "matroska"  # what goes to standard output unless --format says otherwise
# Muxer options that keep a file playable up to its last second whatever stops the process: fragmented MP4 (a
# fragment a second, the index up front) and Matroska clusters of a second (cues are only an index).
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"}
CLUSTERED = {"cluster_time_limit": "1000"}


def streamable_options(muxer: str | None) -> dict[str, str]:
    """The options that make `muxer` write a file playable at every second (or that a pipe can carry)."""
    if muxer in ("mp4", "mov", "ipod", "ismv"):
        return dict(FRAGMENTED)
    if muxer in ("matroska", "webm"):
        return dict(CLUSTERED)
    return {}


def _open_output(
    path: str | Path,
    target: str,
    fmt: str | None,
    options: dict[str, str],
    input_container: av.container.InputContainer,
    metadata: dict[str, str] | None,
) -> av.container.OutputContainer:
    """The output container, with the input's descriptive tags and `metadata`; one line naming `path` if it cannot
    be opened."""
    try:
        container = av.open(target, mode="w", format=fmt, options=options)
    except (av.error.FFmpegError, ValueError) as exc:
        raise ValueError(f"{path}: cannot write there ({getattr(exc, 'strerror', None) or exc})") from None
    kept = ("creation_time", "title", "comment", "language", "location", "date")
    container.metadata.update({k: v for k, v in input_container.metadata.items() if k.lower() in kept})
    container.metadata.update(metadata or {})
    return container


class Sink:
    """Writes OUT by way of a hidden temporary file beside it; `close()` renames it, `abort()` removes it.

    `crash_safe` writes OUT under its own name from the first frame instead, fragmented (`streamable_options`), so
    that a killed process leaves it playable up to about a second before (plus what the encoder held). A URL output
    (rtsp://, rtmp://, udp://, srt://) is pushed live, `-` goes to standard output (`container`, default
    matroska), and with `segment_time` the output is a series of files NAME_000.EXT, NAME_001.EXT, ... cut at key
    frames every `segment_time` seconds (with `segment_list`, a CSV line names each one as it is finished).
    `metadata` goes into the container (each segment's); `carry=False` leaves the input's other streams out (a
    published stream carries the picture alone).
    """

    def __init__(
        self,
        path: str | Path,
        input_container: av.container.InputContainer,
        in_stream: av.video.stream.VideoStream,
        plan: OutputPlan,
        colour: Colour,
        segment_time: float | None = None,
        rotation: int = 0,
        crash_safe: bool = False,
        container: str | None = None,
        metadata: dict[str, str] | None = None,
        segment_list: Path | None = None,
        carry: bool = True,
    ) -> None:
        time_base = in_stream.time_base
        if time_base is None:
            raise ValueError(f"{path}: the input's video stream has no time base")
        self.url = str(path) if is_url(str(path)) else None
        self.stdout = str(path) == STDOUT
        self.path = Path(path) if self.url is None and not self.stdout else None
        self.tmp: Path | None = None
        self.direct = False  # written under its own name (crash-safe), not renamed at the end
        target, fmt, options = self._target(segment_time, crash_safe, container)
        if segment_time and segment_list is not None:  # a line per segment as it is finished (name, start, end)
            options.update(segment_list=str(segment_list), segment_list_type="csv")
        if metadata and options.get("segment_format", fmt) in ("mp4", "mov"):
            _keep_own_tags(options, bool(segment_time))
        self.container = _open_output(path, target, fmt, options, input_container, metadata)
        rate = in_stream.average_rate or in_stream.guessed_rate or FALLBACK_RATE
        self.codec = plan.options.codec
        try:
            self.video = self._add_video(plan, colour, rate, time_base, segment_time)
        except (av.error.FFmpegError, ValueError) as exc:
            self.abort()
            raise ValueError(f"encoder {plan.options.codec!r} is not available here ({exc})") from None
        self.pix_fmt = self.video.pix_fmt
        # segments are cut, and live viewers join, at key frames: one at least this often in stream time
        self.key_interval = segment_time or (1.0 if self.url else None)
        self._next_key: float | None = None
        self.video.metadata.update(
            {k: v for k, v in in_stream.metadata.items() if k in ("language", "rotate", "handler_name")}
        )
        if rotation:
            self.video.set_display_rotation(rotation)  # the display matrix, as the input had it
        self.carried = CarriedStreams()
        self.map: dict[int, av.stream.Stream] = {}
        self.transcoders: dict[int, tuple] = {}
        for av_stream in input_container.streams if carry else ():
            if av_stream.index != in_stream.index and av_stream.type != "video":
                self._carry(av_stream)

    def _target(
        self, segment_time: float | None, crash_safe: bool, container: str | None
    ) -> tuple[str, str | None, dict[str, str]]:
        """Where the muxer writes, which muxer (None: from the name) and its options."""
        if self.url:
            fmt = next(f for p, f in PUSH_FORMATS.items() if self.url.startswith(p))
            return self.url, fmt, {"rtsp_transport": "tcp"} if fmt == "rtsp" else {}
        if self.stdout:  # a pipe cannot seek back: the container must be written as it goes
            fmt = muxer_name(container or DEFAULT_PIPE_FORMAT)
            return "pipe:1", fmt, streamable_options(fmt)
        path = self._file()
        muxer = muxer_name(container) if container else _muxer_of(path)
        if segment_time:
            options = {
                "segment_time": str(segment_time),
                "reset_timestamps": "1",
                "segment_format": muxer or path.suffix.lstrip(".") or "mp4",
            }
            if crash_safe and streamable_options(muxer):  # the segment being written plays too
                options["segment_format_options"] = ":".join(f"{k}={v}" for k, v in streamable_options(muxer).items())
            return str(segment_pattern(path)), "segment", options
        if crash_safe:
            self.direct = True
            return str(path), muxer, streamable_options(muxer)
        self.tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
        return str(self.tmp), muxer, {}

    def _file(self) -> Path:
        """The output file: what OUT names where it is neither a URL nor standard output."""
        if self.path is None:
            raise ValueError(f"{self.url or STDOUT}: not a file")
        return self.path

    def _add_video(
        self, plan: OutputPlan, colour: Colour, rate: Fraction, time_base: Fraction, segment_time: float | None
    ) -> av.video.stream.VideoStream:
        options = plan.options
        video = self.container.add_stream(options.codec, rate=rate)
        if not isinstance(video, VideoStream):
            raise ValueError(f"{options.codec} is not a video encoder")
        video.width, video.height = plan.size
        video.pix_fmt = plan.pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        video.codec_context.colorspace = colour.colorspace
        video.codec_context.color_range = colour.color_range
        opts: dict[str, object] = {}
        if options.codec in ("libx264", "libx265"):
            opts = {"crf": str(options.crf), "preset": options.preset}
            if segment_time or self.url:
                # Segments can only start at key frames, and a live viewer needs them often.
                opts["g"] = str(max(1, round(float(rate) * (segment_time or 1.0))))
                opts["sc_threshold"] = "0"
            if self.url:  # a live viewer: no frame waits for later ones (no lookahead, no B-frames)
                opts["tune"] = "zerolatency"
        elif options.codec.endswith("_nvenc"):
            opts = {"cq": str(options.crf), "preset": options.preset if is_nvenc_preset(options.preset) else "p5"}
        video.options = opts
        return video

    def _carry(self, av_stream: av.stream.Stream) -> None:
        codec = av_stream.codec_context.name if av_stream.codec_context else "?"
        label = f"#{av_stream.index} {av_stream.type} {codec}"
        if _muxer_accepts(self.container.format.name, av_stream.type, codec):
            try:
                out = self.container.add_stream_from_template(av_stream)
                out.metadata.update(av_stream.metadata)
                self.map[av_stream.index] = out
                self.carried.copied.append(label)
                return
            except (av.error.FFmpegError, ValueError, TypeError):
                pass
        if isinstance(av_stream, AudioStream):
            try:
                target: Literal["libopus", "aac"] = "libopus" if self.container.format.name == "webm" else "aac"
                out = self.container.add_stream(target, rate=48000 if target == "libopus" else av_stream.rate)
                out.metadata.update(av_stream.metadata)
                fmt = "s16" if target == "libopus" else "fltp"
                self.transcoders[av_stream.index] = (
                    out,
                    av.AudioResampler(format=fmt, layout=av_stream.layout.name, rate=out.rate),
                )
                self.carried.reencoded.append(f"{label} -> {target}")
                return
            except (av.error.FFmpegError, ValueError):
                pass
        self.carried.dropped.append(label)

    def mux_packet(self, packet: av.Packet) -> None:
        """Copy (or re-encode) one packet of a non-video input stream."""
        index = packet.stream.index
        if index in self.map:
            if packet.dts is None:
                return
            packet.stream = self.map[index]
            self.container.mux(packet)
        elif index in self.transcoders:
            out, resampler = self.transcoders[index]
            for frame in packet.decode():  # the input stream's own decoder, set up from its parameters
                for f in resampler.resample(frame):
                    f.pts = None
                    self.container.mux(out.encode(f))

    def write(self, frame: av.VideoFrame) -> int:
        """Encode one upscaled frame (its pts and time_base already set to the input's); the packets muxed (the
        encoder may hold the first frames)."""
        self._key_by_time(frame)
        packets = self.video.encode(frame)
        for packet in packets:
            self.container.mux(packet)
        return len(packets)

    def _key_by_time(self, frame: av.VideoFrame) -> None:
        """A key frame every `key_interval` seconds of the stream's time: x264's GOP counts frames, and a live input
        that drops frames would otherwise cut its segments (and let viewers join) ever further apart."""
        if self.key_interval is None or frame.pts is None or frame.time_base is None:
            return
        seconds = float(frame.pts * frame.time_base)
        if self._next_key is None or seconds >= self._next_key:
            frame.pict_type = PictureType.I
            self._next_key = seconds + self.key_interval
        else:
            frame.pict_type = PictureType.NONE

    def close(self) -> None:
        """Flush encoders, finish the file and move it to its real name."""
        for packet in self.video.encode(None):
            self.container.mux(packet)
        for out, _ in self.transcoders.values():
            for packet in out.encode(None):
                self.container.mux(packet)
        self.container.close()
        if self.tmp is not None:
            os.replace(self.tmp, self._file())

    def abort(self, keep_written: bool = False) -> None:
        """Drop the partial output; a crash-safe one is kept with `keep_written` (what it holds plays)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - closing a broken muxer can fail too; the file goes either way
            pass
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)
        elif self.direct and not keep_written:
            self._file().unlink(missing_ok=True)


# What each muxer takes besides video, by stream type (None: anything FFmpeg can put there). Without this check a
# stream the muxer refuses would only fail when the header is written, after all the work.
_MUXER_CODECS: dict[str, dict[str, set[str] | None]] = {
    "mp4": {"audio": {"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"}, "subtitle": {"mov_text"}, "data": set()},
    "mov": {
        "audio": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"},
        "subtitle": {"mov_text"},
        "data": set(),
    },
    "webm": {"audio": {"opus", "vorbis"}, "subtitle": {"webvtt"}, "data": set()},
    "mpegts": {"audio": {"aac", "mp3", "mp2", "ac3", "eac3", "opus"}, "subtitle": {"dvb_subtitle"}, "data": None},
    "avi": {"audio": {"mp3", "ac3", "aac", "pcm_s16le", "mp2"}, "subtitle": set(), "data": set()},
    "flv": {"audio": {"aac", "mp3"}, "subtitle": set(), "data": set()},
}


def _keep_own_tags(options: dict[str, str], segmented: bool) -> None:
    """MP4 keeps metadata keys of its own (srstream's provenance) only with movflags +use_metadata_tags."""
    if segmented:  # each segment's muxer takes its options as one string: a second movflags adds to the first
        given = options.get("segment_format_options")
        options["segment_format_options"] = (
            f"{given}:movflags=+use_metadata_tags" if given else "movflags=+use_metadata_tags"
        )
    else:
        options["movflags"] = options.get("movflags", "") + "+use_metadata_tags"


def _encoder_opens(codec: str, size: tuple[int, int], pix_fmt: str) -> bool:
    """Whether `codec` opens here: NVENC encoders are in PyAV's wheels, the hardware may not be."""
    try:
        context = av.CodecContext.create(codec, "w")
        if not isinstance(context, VideoCodecContext):
            return False
        context.width, context.height = size
        context.pix_fmt = pix_fmt
        context.time_base = 1 / FALLBACK_RATE
        context.open()
        return True  # closed when collected
    except (av.error.FFmpegError, OSError, ValueError):
        return False


def _muxer_accepts(muxer: str, kind: str, codec: str) -> bool:
    for name, table in _MUXER_CODECS.items():
        if name in muxer.split(","):
            allowed = table.get(kind, set())
            return allowed is None or codec in allowed
    return True  # matroska and the rest take what FFmpeg can write


MUXERS = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".ts": "mpegts",
    ".m2ts": "mpegts",
    ".nut": "nut",
    ".avi": "avi",
    ".flv": "flv",
}


def muxer_name(name: str) -> str:
    """FFmpeg's muxer for a --format value: a muxer name (matroska, nut, mpegts, mp4) or a suffix (mkv, ts)."""
    return MUXERS.get(f".{name.lower().lstrip('.')}", name.lower())


def _muxer_of(path: Path) -> str | None:
    """The muxer for `path`'s suffix; None leaves FFmpeg to guess from the name."""
    return MUXERS.get(path.suffix.lower())


class Encoder(threading.Thread):
    """Makes the VideoFrames of `Upscaled` frames (`maker`: converting floats here, off the engine's thread),
    encodes them and muxes passthrough packets from a queue into a Sink, until END; records each frame's latency
    from capture to written in `latencies` when given one."""

    def __init__(
        self, sink: SinkLike, maker: FrameMaker, items: queue.Queue, latencies: collections.deque | None = None
    ) -> None:
        super().__init__(daemon=True, name="srstream-encode")
        self.sink, self.maker, self.items, self.latencies = sink, maker, items, latencies
        self.error: BaseException | None = None
        self.written = 0
        self.last_latency: float | None = None
        self.lag = 0.0  # moving average of seconds from handed over to written (queue wait and encoding)

    def run(self) -> None:
        try:
            while (item := self.items.get()) is not END:
                if isinstance(item, Upscaled):
                    frame = self.maker.frame(item.pixels)
                    frame.pts, frame.time_base = item.pts, item.time_base
                    frame.opaque = item.captured  # a publisher measures capture to published from it
                    self.sink.write(frame)
                    self.written += 1
                    done = time.monotonic()
                    self.lag = 0.9 * self.lag + 0.1 * (done - item.queued) if self.written > 1 else done - item.queued
                    if self.latencies is not None:
                        self.last_latency = done - item.captured
                        self.latencies.append(self.last_latency)
                else:
                    self.sink.mux_packet(item)
        except BaseException as exc:  # noqa: BLE001
            self.error = exc
            while self.items.get() is not END:  # keep draining so the producer never blocks
                pass
