"""The video front door's API: one input (`upscale_video`), several at once through one engine (`upscale_many`),
or upscaled frames as an iterator (`iter_upscaled`).

Each input is a `stream.Stream`, and runs decode -> (scheduler: batch, engine) -> encode -> mux as threads joined by
bounded buffers, so memory stays flat whatever the length. The decode thread (`source.Decoder`) queues video frames
as YUV planes (or RGB where swscale must convert) and other packets as they are, in demux order; the scheduler
(`scheduler.Scheduler`) moves frames to the engine's device, converts them there, upscales them in batches across
inputs and hands each Stream its output, which goes to its encode thread (`sink.Encoder`) to be made into
encoder-ready frames and muxed with the other packets untouched. `iter_upscaled` takes the same batches, from a
Stream without an output, in the caller's thread. Every output frame keeps its input frame's pts and time base.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import numpy as np

from srstream.engine import Upscaler
from srstream.signals import sigterm_as_interrupt
from srstream.video.frames import Decoded
from srstream.video.scheduler import Scheduler
from srstream.video.settings import Settings
from srstream.video.sink import STDOUT, is_url, segment_pattern
from srstream.video.source import VideoInputError, classify
from srstream.video.stats import Stats
from srstream.video.status import StatusLines
from srstream.video.stream import Stream

log = logging.getLogger("srstream.video")

__all__ = ["Settings", "Stats", "iter_upscaled", "output_name", "upscale_many", "upscale_video"]


def output_name(source: str, suffix: str = ".mp4") -> str:
    """The output file name for an input in a directory: the stem for files, cam_HOST_PORT_PATH for URLs."""
    if classify(source).kind == "stream":
        parts = urlsplit(source)
        host = parts.hostname or "host"
        port = str(
            parts.port or {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "http": 80, "https": 443}.get(parts.scheme, 0)
        )
        path = re.sub(r"[^A-Za-z0-9.-]+", "_", parts.path).strip("_") or "stream"
        return f"cam_{host}_{port}_{path}{suffix}"
    stem = "stdin" if source == "-" else Path(source).stem
    return f"{re.sub(r'%0?[0-9]*d', 'N', stem)}{suffix}"


def check_output(source: str, output: str | Path, overwrite: bool, segment_time: float | None = None) -> None:
    """Raise if `output` exists (unless `overwrite`) or is the input itself: before any work starts."""
    if is_url(str(output)) or str(output) == STDOUT:
        return
    output = Path(output)
    first = Path(str(segment_pattern(output)) % 0) if segment_time else output
    if first.exists() and not overwrite:
        raise FileExistsError(f"{first}: already exists (use -y/--overwrite to replace it)")
    if classify(source).kind == "file" and Path(source).resolve() == output.resolve():
        raise ValueError(f"{output}: output would overwrite the input")


def _open_started(
    jobs: list[tuple[str, str | Path]], upscaler: Upscaler, settings: Settings, wakeup: threading.Condition
) -> list[Stream]:
    # A network input takes about a second to open (RTSP handshake, probing): open them side by side and start
    # reading each at once, so that no camera's frames pile up while another one is being opened.
    def open_one(job: tuple[str, str | Path]) -> Stream:
        stream = Stream(job[0], job[1], upscaler, settings, wakeup, announce_failures=len(jobs) > 1)
        stream.start()
        return stream

    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        return list(pool.map(open_one, jobs))


def upscale_many(
    jobs: list[tuple[str, str | Path]],
    upscaler: Upscaler,
    settings: Settings,
    progress: bool = True,
    overwrite: bool = False,
    concurrency: int = 0,
) -> list[Stats]:
    """Upscale every (input, output) pair through `upscaler`, batching across inputs: all at once, or
    `concurrency` at a time (a new one starting as one ends). Every output is checked first (`check_output`
    raises before any work); then one failing input is reported in its Stats (`error`) and the others go on.
    Ctrl-C or SIGTERM finishes every output with the frames so far (their Stats say `interrupted`)."""
    for source, output in jobs:
        check_output(source, output, overwrite, settings.segment_time)
    for _, output in jobs:
        if not is_url(str(output)):
            Path(output).parent.mkdir(parents=True, exist_ok=True)
    wakeup = threading.Condition()
    limit = concurrency if 0 < concurrency < len(jobs) else len(jobs)
    first = _open_started(jobs[:limit], upscaler, settings, wakeup)
    later = iter(jobs[limit:])
    status = StatusLines(first, progress and limit == len(jobs))
    overall = None
    if progress and limit < len(jobs):
        from tqdm import tqdm

        overall = tqdm(total=len(jobs), unit="video", desc="videos", dynamic_ncols=True)
        status = StatusLines([], False)

    def waiting() -> Stream | None:
        if overall is not None:
            overall.n = sum(s.finished for s in scheduler.streams)
            overall.refresh()
        job = next(later, None)
        return None if job is None else Stream(job[0], job[1], upscaler, settings, wakeup, announce_failures=True)

    scheduler = Scheduler(
        first,
        upscaler,
        settings,
        wakeup,
        on_batch=status.update,
        waiting=waiting if limit < len(jobs) else None,
        concurrency=limit,
    )
    try:
        with sigterm_as_interrupt():
            scheduler.run()
    except KeyboardInterrupt:
        pass  # every stream is finished and marked interrupted
    finally:
        status.close()
        if overall is not None:
            overall.n = len(jobs)
            overall.close()
    return [s.stats for s in scheduler.streams]


def upscale_video(
    source: str,
    output: str | Path,
    upscaler: Upscaler,
    settings: Settings | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> Stats:
    """Upscale every frame of `source` into `output` (a file, segments with `settings.segment_time`, or a URL to
    push to), keeping timing, colour and the other streams, as `settings` say (`Settings()`: the CLI's defaults).
    Sizes a subsampled pixel format cannot hold are rounded to even, with a log line. Live runs (by default,
    network streams) drop frames to keep latency within `max_latency`; crash-safe runs (by default, live inputs
    and long files) write a file that stays playable if the process is killed; `container` names the muxer where
    the output's name cannot (`-`, standard output: matroska). Raises on a failed input or output."""
    settings = settings or Settings()
    check_output(source, output, overwrite, settings.segment_time)
    return _run_one(source, output, upscaler, settings, progress)


def _run_one(source: str, output: str | Path, upscaler: Upscaler, settings: Settings, progress: bool) -> Stats:
    """One stream through its own scheduler until its input ends or Ctrl-C; its stats, or its error raised."""
    wakeup = threading.Condition()
    stream = Stream(source, output, upscaler, settings, wakeup)
    if stream.exception is not None:
        raise stream.exception
    if not is_url(str(output)):
        Path(output).parent.mkdir(parents=True, exist_ok=True)
    status = StatusLines([stream], progress)
    scheduler = Scheduler([stream], upscaler, settings, wakeup, on_batch=status.update)
    try:
        with sigterm_as_interrupt():
            scheduler.run()
    except KeyboardInterrupt:
        if stream.stats.frames_out == 0:  # interrupted before the first frame: an empty file would not play
            raise
    finally:
        status.close()
    if stream.exception is not None:
        raise stream.exception
    if stream.stats.error is not None:
        raise VideoInputError(stream.stats.error)
    return stream.stats


def iter_upscaled(source: str, upscaler: Upscaler, settings: Settings | None = None) -> Iterator[Decoded]:
    """Upscaled frames of `source` as `Decoded` (`.rgb` uint8, or uint16 for deep input; pts, time base), in
    order; other streams ignored. `settings.output_size` resamples them to the size asked for; the run is never
    live (every frame comes back) and its encoder options are unused."""
    settings = replace(settings or Settings(), live=False)
    wakeup = threading.Condition()
    stream = Stream(source, None, upscaler, settings, wakeup)  # no output: the frames come back here
    if stream.exception is not None:
        raise stream.exception
    try:
        for engine_call, y in Scheduler([stream], upscaler, settings, wakeup).batches():
            for d, rgb in zip(engine_call.frames, stream.pixels(y)):  # RGB arrays: the stream has no output
                yield Decoded(d.pts, d.time_base, rgb=cast(np.ndarray, rgb), received=d.received, captured=d.captured)
    finally:
        stream.close()
    if stream.exception is not None:
        raise stream.exception
