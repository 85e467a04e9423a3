"""How a video run reads, upscales and writes: `EncodeOptions` (the encoder) and `Settings` (everything else), the
only place where the video front door's defaults are written. The CLI's flags, the site's camera keys, the Python
API and the demo read their defaults from these classes; both are built with keywords.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from srstream.engine import BATCH
from srstream.output_size import OutputSize

FALLBACK_RATE = Fraction(25)  # frames a second taken where a container states no rate
TIMEOUT_S = 10.0  # connect and read timeout for network inputs


@dataclass(kw_only=True)
class EncodeOptions:
    """ffmpeg-style encoder settings; `pix_fmt=None` keeps 10-bit when the input and codec allow it."""

    codec: str = "libx264"
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None


@dataclass(frozen=True, kw_only=True)
class Settings:
    """How every input of one run is read, upscaled and written."""

    options: EncodeOptions = field(default_factory=EncodeOptions)
    batch: int = BATCH  # frames per engine call
    duration: float | None = None  # seconds of input, then stop
    retries: int = 5  # reconnect attempts for a dropped network input (-1: for ever)
    timeout_s: float = TIMEOUT_S
    segment_time: float | None = None
    output_size: OutputSize | None = None
    live: bool | None = None  # None: live for network streams, not for files
    max_latency: float = 2.0  # live: seconds from capture to written
    crash_safe: bool | None = None  # None: for live inputs and files longer than CRASH_SAFE_AFTER_S
    container: str | None = None  # the muxer, where the output's name cannot say (standard output)
    restream: str | None = None  # a second output, published (a Publisher: it reconnects, never fails the run)
    metadata: dict[str, str] | None = None  # into the output's container (provenance)
    segment_list: bool = False  # segments: a CSV line per finished one (.NAME.segments.csv beside them)
    label: str | None = None  # burnt into the picture, bottom left ("upscaled by srstream MODEL")
