"""YUV <-> RGB with the input's own matrix and range, and the 8/10-bit choice, through swscale (PyAV)."""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

# AVColorSpace values (libavutil/pixfmt.h) and the swscale matrix each one uses.
_MATRIX = {1: "itu709", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
_RANGE = {1: "MPEG", 2: "JPEG"}


@dataclass(frozen=True)
class Colour:
    """How a stream's YUV maps to RGB: matrix (AVColorSpace), range (1 limited, 2 full), bit depth."""

    colorspace: int
    color_range: int
    bits: int

    @property
    def matrix(self) -> str:
        return _MATRIX.get(self.colorspace, "itu601")

    @property
    def rgb_format(self) -> str:
        return "rgb48le" if self.bits > 8 else "rgb24"


def _bits(pix_fmt: str) -> int:
    fmt = av.VideoFormat(pix_fmt)
    return max(c.bits for c in fmt.components) if fmt.components else 8


def colour_of(frame: av.VideoFrame) -> Colour:
    """The frame's matrix and range; unspecified ones guessed as players do (BT.709 from 720 lines up, else 601)."""
    space = int(frame.colorspace)
    if space not in _MATRIX:
        space = 1 if frame.height >= 720 else 6
    rng = int(frame.color_range)
    if rng not in _RANGE:
        rng = 2 if frame.format.name.startswith("yuvj") else 1
    return Colour(space, rng, _bits(frame.format.name))


def to_rgb(frame: av.VideoFrame, colour: Colour) -> np.ndarray:
    """(H, W, 3) uint8, or uint16 for deeper input, converted with the input's matrix and range."""
    if frame.format.name in ("rgb24", "rgb48le"):
        return frame.to_ndarray()
    rgb = frame.reformat(
        format=colour.rgb_format,
        src_colorspace=colour.matrix,
        src_color_range=_RANGE[colour.color_range],
        dst_color_range="JPEG",
        interpolation="BICUBIC",
    )
    return rgb.to_ndarray()


def from_rgb(array: np.ndarray, pix_fmt: str, colour: Colour) -> av.VideoFrame:
    """An encoder-ready frame in `pix_fmt`, with the same matrix and range as the input, tagged as such."""
    fmt = "rgb48le" if array.dtype == np.uint16 else "rgb24"
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=fmt)
    out = frame.reformat(
        format=pix_fmt,
        dst_colorspace=colour.matrix,
        src_color_range="JPEG",
        dst_color_range=_RANGE[colour.color_range],
        interpolation="BICUBIC",
    )
    out.colorspace = colour.colorspace
    out.color_range = colour.color_range
    return out
