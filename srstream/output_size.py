"""Output sizes as people ask for them: `--outscale F` (Real-ESRGAN) or `--size WxH` with -1 for the aspect
(ffmpeg's scale filter); knows nothing of models or devices, only of sizes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from training.errors import SrstreamError


class OutputSizeError(SrstreamError, ValueError):
    """An output size or factor that cannot be honoured."""


@dataclass(frozen=True)
class OutputSize:
    """What the user asked for: a factor (`outscale`) or a size where -1 keeps the aspect ratio; neither means the
    model's own scale."""

    outscale: float | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if self.outscale is not None and (self.width is not None or self.height is not None):
            raise OutputSizeError("--outscale and --size are exclusive: give one")
        if self.outscale is not None and not self.outscale > 0:
            raise OutputSizeError(f"--outscale {self.outscale:g}: must be a positive factor")

    def resolve(self, width: int, height: int, model_scale: int) -> tuple[int, int]:
        """The output (width, height) for a (width, height) input through a model of `model_scale`."""
        if self.outscale is not None:
            size = (_round(width * self.outscale), _round(height * self.outscale))
        elif self.width is None and self.height is None:
            size = (width * model_scale, height * model_scale)
        elif self.width is None or self.height is None:
            raise OutputSizeError(f"--size {self.width}x{self.height}: give both sides (-1 keeps the aspect ratio)")
        elif self.width == -1:
            size = (_round(self.height * width / height), self.height)
        elif self.height == -1:
            size = (self.width, _round(self.width * height / width))
        else:
            size = (self.width, self.height)
        if min(size) < 1:
            raise OutputSizeError(f"output size {size[0]}x{size[1]} for a {width}x{height} input is empty")
        return size


def parse_size(text: str) -> OutputSize:
    """'1920x1080', '1920x-1' or '-1x1080' (ffmpeg's `scale=W:H` also accepted as 'W:H')."""
    match = re.fullmatch(r"\s*(-?\d+)\s*[x:X]\s*(-?\d+)\s*", text or "")
    if not match:
        raise OutputSizeError(f"--size {text!r}: expected WxH, for example 1920x1080 or 1920x-1")
    w, h = int(match[1]), int(match[2])
    if w == -1 and h == -1:
        raise OutputSizeError(f"--size {text}: only one side can be -1 (it follows the other's aspect ratio)")
    for side in (w, h):
        if side == 0 or side < -1:
            raise OutputSizeError(f"--size {text}: sides must be positive, or -1 to keep the aspect ratio")
    return OutputSize(width=w, height=h)


def from_options(outscale: str | float | None, size: str | None) -> OutputSize:
    """The OutputSize of the CLI's `--outscale` and `--size` (both None: the model's scale)."""
    if outscale is not None and size:
        raise OutputSizeError("--outscale and --size are exclusive: give one")
    if size:
        return parse_size(size)
    if outscale is None:
        return OutputSize()
    try:
        factor = float(outscale)
    except ValueError:
        raise OutputSizeError(f"--outscale {outscale!r}: expected a number, for example 3 or 2.5") from None
    if not math.isfinite(factor):
        raise OutputSizeError(f"--outscale {outscale}: must be a positive factor")
    return OutputSize(outscale=factor)


def even(size: tuple[int, int]) -> tuple[int, int]:
    """The nearest even width and height (at least 2): what 4:2:0 and 4:2:2 encoders take."""
    return tuple(max(2, 2 * _round(s / 2)) for s in size)  # type: ignore[return-value]


def _round(x: float) -> int:
    # Half up, not Python's half-to-even: 2.5 -> 3 as a user computing the size by hand expects.
    return math.floor(x + 0.5)
