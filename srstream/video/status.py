"""The status shown while a run goes on: one progress line per input, with fps in and out, dropped frames,
latency and reconnects (live inputs), refreshed about once a second."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tqdm import tqdm

from srstream.redact import redact

if TYPE_CHECKING:
    from srstream.video.stream import Stream


class StatusLines:
    """tqdm lines, one per stream (`streams` need .source, .total, .live and .progress())."""

    def __init__(self, streams: list[Stream], enabled: bool) -> None:
        self.streams = streams
        self.enabled = enabled
        self.bars = {}
        self.started = time.monotonic()
        self._last = 0.0
        for i, stream in enumerate(streams):
            source = redact(stream.source)
            label = source if len(source) <= 40 else "..." + source[-37:]
            self.bars[id(stream)] = tqdm(
                total=getattr(stream, "total", None),
                unit="frame",
                desc="upscaling" if len(streams) == 1 else label,
                position=i,
                disable=not enabled,
                dynamic_ncols=True,
                leave=True,
            )

    def update(self, stream: Stream, frames: int) -> None:
        """`frames` more of `stream` went through the engine."""
        bar = self.bars.get(id(stream))
        if bar is None:
            return
        bar.update(frames)
        now = time.monotonic()
        if now - self._last >= 1.0:
            self._last = now
            for s in self.streams:
                self.bars[id(s)].set_postfix_str(self.line(s), refresh=True)

    def line(self, stream: Stream) -> str:
        """'in 25.0 fps, out 8.1 fps, dropped 120, latency 1.7 s, reconnects 0' (live) or '' (files)."""
        progress = stream.progress()
        if progress is None or not stream.live:
            return ""
        elapsed = max(1e-6, progress.seconds)
        latency = progress.latency
        return (
            f"in {progress.decoded / elapsed:.1f} fps, out {progress.written / elapsed:.1f} fps, "
            f"dropped {progress.dropped}, latency {'-' if latency is None else f'{latency:.1f} s'}, "
            f"reconnects {progress.reconnects}"
        )

    def close(self) -> None:
        """Close the lines (they stay on the terminal)."""
        for bar in self.bars.values():
            bar.close()
