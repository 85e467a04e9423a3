"""What a run did for one input; `--json` prints it (a list of them for several inputs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from srstream.redact import redact


@dataclass
class Stats:
    """Counts, sizes, timing and, for live inputs, latency from capture to the upscaled frame written."""

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
    live: bool = False
    reconnects: int = 0
    dropped_frames: int = 0
    latency_p50_s: float | None = None
    latency_p95_s: float | None = None
    streams_copied: list[str] = field(default_factory=list)
    streams_reencoded: list[str] = field(default_factory=list)
    streams_dropped: list[str] = field(default_factory=list)
    interrupted: bool = False
    error: str | None = None

    def set_latency(self, seconds: list[float]) -> None:
        """Percentiles of the latencies of the frames written (live inputs only)."""
        if seconds:
            self.latency_p50_s = round(float(np.percentile(seconds, 50)), 3)
            self.latency_p95_s = round(float(np.percentile(seconds, 95)), 3)

    def to_dict(self) -> dict:
        """The fields as a plain dict, as `--json` prints them: URLs without their credentials."""
        fields = asdict(self)
        for key in ("input", "output", "error"):
            if fields[key] is not None:
                fields[key] = redact(fields[key])
        return fields
