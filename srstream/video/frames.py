"""Frames between the threads: what the decoder hands the engine, what the engine hands the encoder, the end marker
of their queues, and the moves between them and the engine's device.

A decoded frame travels as its YUV planes where `yuv.layout_of` knows the format (the usual case), else as swscale's
RGB. On a GPU the planes are uploaded as they are and converted there, and the output is converted to the encoder's
planes there too, so only 1.5 bytes a pixel cross PCIe each way. On the CPU the same torch conversion runs in the
encoder's thread, beside the engine rather than in its way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np
import torch

from srstream.engine import Upscaler
from srstream.video.colour import Colour, from_rgb, to_rgb
from srstream.video.yuv import (
    Layout,
    layout_of,
    planes_to_rgb,
    read_planes,
    rgb_to_planes,
    write_frame,
)
from training.compression import Compression, from_decoder

END = object()  # the last item of a queue between two threads: decoder -> scheduler, scheduler -> encoder


@dataclass
class Decoded:
    """One decoded frame: its planes (with their layout) or RGB, and its timing."""

    pts: int
    time_base: Fraction
    planes: tuple[np.ndarray, ...] | None = None
    layout: Layout | None = None
    rgb: np.ndarray | None = None
    received: float = field(default=0.0, compare=False)  # time.monotonic() when decoded
    captured: float = field(default=0.0, compare=False)  # estimated time.monotonic() of capture (live latency)
    compression: Compression | None = field(default=None, compare=False, repr=False)  # the decoder's QP map

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        h, w = (self.planes[0] if self.planes is not None else _rgb(self)).shape[:2]
        return w, h

    @property
    def kind(self) -> tuple:
        """Frames of one kind can share an engine call."""
        return (self.layout.pix_fmt if self.layout else _rgb(self).dtype.str, self.size)


def _rgb(frame: Decoded) -> np.ndarray:
    if frame.rgb is None:
        raise ValueError(f"decoded frame at pts {frame.pts} has neither planes nor RGB")
    return frame.rgb


def _planes(frame: Decoded) -> tuple[np.ndarray, ...]:
    if frame.planes is None:
        raise ValueError(f"decoded frame at pts {frame.pts} has no planes, unlike the others of its group")
    return frame.planes


@dataclass
class Upscaled:
    """One upscaled frame on its way to the encoder: encoder-ready planes, a float RGB tensor (3, H, W) on the CPU
    still to convert, or 8/16-bit RGB for swscale."""

    pixels: tuple[np.ndarray, ...] | torch.Tensor | np.ndarray
    pts: int
    time_base: Fraction
    captured: float = 0.0
    queued: float = field(default_factory=time.monotonic)  # when handed to the encoder


def decode(
    frame: av.VideoFrame,
    colour: Colour,
    pts: int,
    time_base: Fraction,
    received: float,
    captured: float,
    read_qp: bool = False,
) -> Decoded:
    """A `Decoded` of a PyAV frame: planes where we convert the format ourselves, else swscale's RGB; with
    `read_qp`, the decoder's compression facts too (about 2 ms a 720p frame: only for a model that takes them)."""
    layout = layout_of(frame.format.name, frame.width, frame.height)
    facts = from_decoder(frame) if read_qp else None
    if layout is not None:
        return Decoded(
            pts,
            time_base,
            planes=read_planes(frame, layout),
            layout=layout,
            received=received,
            captured=captured,
            compression=facts,
        )
    return Decoded(pts, time_base, rgb=to_rgb(frame, colour), received=received, captured=captured, compression=facts)


def to_device_rgb(group: list[Decoded], upscaler: Upscaler, colour: Colour) -> torch.Tensor:
    """A group of one kind as (N, 3, H, W) float RGB in [0, 1] on the engine's device, converted there."""
    first = group[0]
    if first.layout is not None:  # decoded as planes (`decode` sets the two together)
        planes = [
            upscaler.to_device(torch.from_numpy(np.stack([_planes(d)[i] for d in group])))
            for i in range(len(_planes(first)))
        ]
        return planes_to_rgb(planes, first.layout, colour)
    rgb = upscaler.to_device(torch.from_numpy(np.stack([_rgb(d) for d in group])))
    peak = 255.0 if rgb.dtype == torch.uint8 else 65535.0
    return rgb.permute(0, 3, 1, 2).float().div_(peak)


class FrameMaker:
    """Turns the engine's output into encoder-ready VideoFrames in `pix_fmt`, with the input's matrix and range;
    with `pix_fmt=None` (no encoder: frames for the caller), into RGB arrays."""

    def __init__(self, pix_fmt: str | None, colour: Colour, size: tuple[int, int]) -> None:
        self.pix_fmt = pix_fmt
        self.layout = layout_of(pix_fmt, *size) if pix_fmt else None
        bits = self.layout.bits if self.layout else colour.bits
        self.colour = Colour(colour.colorspace, colour.color_range, bits)
        self.source_colour = colour

    def from_engine(self, y: torch.Tensor) -> list[tuple[np.ndarray, ...] | torch.Tensor | np.ndarray]:
        """Per frame of the engine's (N, 3, H, W) output: planes converted on the GPU, the float frame itself on
        the CPU (`frame` converts it in the encoder's thread), or RGB for swscale."""
        if self.layout is None:
            return list(to_rgb_array(y, deep=self.colour.bits > 8))
        if y.device.type == "cpu":
            return list(y)
        planes = [p.cpu().numpy() for p in rgb_to_planes(y, self.layout, self.colour)]
        return [tuple(p[i] for p in planes) for i in range(y.shape[0])]

    def frame(self, pixels: tuple[np.ndarray, ...] | torch.Tensor | np.ndarray) -> av.VideoFrame:
        """The VideoFrame of one output of `from_engine`, tagged with the output's matrix and range."""
        if self.pix_fmt is None:
            raise ValueError("a FrameMaker without a pix_fmt makes RGB arrays (from_engine), not VideoFrames")
        if isinstance(pixels, np.ndarray):
            return from_rgb(pixels, self.pix_fmt, self.source_colour)
        if self.layout is None:
            raise ValueError(f"{self.pix_fmt} frames are made from RGB arrays, not from planes or tensors")
        if isinstance(pixels, torch.Tensor):
            pixels = tuple(p[0].numpy() for p in rgb_to_planes(pixels[None], self.layout, self.colour))
        out = write_frame(pixels, self.layout)
        out.colorspace = self.colour.colorspace
        out.color_range = self.colour.color_range
        return out


def to_rgb_array(y: torch.Tensor, deep: bool) -> np.ndarray:
    """The engine's (N, 3, H, W) float output as (N, H, W, 3) uint8, or uint16 for deep input."""
    peak, dtype = (65535, torch.int32) if deep else (255, torch.uint8)
    rgb = y.mul(peak).round_().to(dtype).permute(0, 2, 3, 1).cpu().numpy()
    return rgb.astype(np.uint16) if deep else rgb
