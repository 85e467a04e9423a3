"""YUV planes <-> RGB in torch, on whatever device the planes are on: decoded frames go to the engine's device as
the decoder gives them (4:2:0 is 1.5 bytes a pixel) and come back the same way, ready for the encoder.

The conversion uses the stream's matrix (BT.601/709/2020/240M) and range at its bit depth. Chroma is placed at the
centre of its luma block (what swscale assumes): bilinear upsampling on the way in, the block's mean on the way
out. Against swscale's accurate path (`accurate_rnd+full_chroma_int`) it is within one level (tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import torch
import torch.nn.functional as F

from srstream.video.colour import Colour

# Kr, Kb of each AVColorSpace; Kg = 1 - Kr - Kb.
_KR_KB = {
    1: (0.2126, 0.0722),
    5: (0.299, 0.114),
    6: (0.299, 0.114),
    7: (0.212, 0.087),
    9: (0.2627, 0.0593),
    10: (0.2627, 0.0593),
}


@dataclass(frozen=True)
class Layout:
    """How a YUV pixel format stores its planes: bit depth, chroma subsampling (log2) and interleaved chroma."""

    pix_fmt: str
    bits: int
    sub_x: int
    sub_y: int
    interleaved: bool = False  # NV12: one plane of U, V pairs

    @property
    def dtype(self) -> np.dtype:
        """The numpy type of one sample: uint8, or little-endian uint16 for 9 to 16 bits."""
        return np.dtype(np.uint8 if self.bits <= 8 else "<u2")


def layout_of(pix_fmt: str, width: int = 2, height: int = 2) -> Layout | None:
    """The Layout of a planar YUV (or NV12) format with even sides where it needs them; None for what swscale must
    convert (RGB, packed 4:2:2, P010's shifted samples, odd sizes of subsampled formats, ...)."""
    try:
        fmt = av.VideoFormat(pix_fmt)
    except (ValueError, av.error.FFmpegError):
        return None
    comps = fmt.components
    name = fmt.name
    if not name.startswith(("yuv", "nv12")) or len(comps) != 3 or fmt.has_palette:
        return None
    if name.startswith(("yuva", "yuyv", "uyvy")) or (name.endswith("be") and comps[0].bits > 8):
        return None
    bits = comps[0].bits
    if bits > 16 or any(c.bits != bits for c in comps):
        return None
    probe = av.VideoFormat(pix_fmt, 4, 4).components
    sub_x, sub_y = {4: 0, 2: 1, 1: 2}[probe[1].width], {4: 0, 2: 1, 1: 2}[probe[1].height]
    interleaved = name == "nv12"
    if not interleaved and any(c.plane != i for i, c in enumerate(comps)):
        return None  # not one plane per component
    if width % (1 << sub_x) or height % (1 << sub_y):
        return None
    return Layout(name, bits, sub_x, sub_y, interleaved)


def read_planes(frame: av.VideoFrame, layout: Layout) -> tuple[np.ndarray, ...]:
    """The frame's planes as arrays without padding: (Y, U, V), or (Y, UV) for NV12 (UV as H/2 x W/2 x 2)."""
    out = []
    for i, plane in enumerate(frame.planes):
        row = np.frombuffer(memoryview(plane), dtype=layout.dtype).reshape(plane.height, -1)
        width = plane.width * (2 if layout.interleaved and i == 1 else 1)
        array = row[:, :width]
        out.append(array.reshape(plane.height, plane.width, 2) if layout.interleaved and i == 1 else array)
    return tuple(np.array(a) for a in out)  # copies: the decoder reuses its buffers


def write_frame(planes: tuple[np.ndarray, ...], layout: Layout) -> av.VideoFrame:
    """An encoder-ready VideoFrame from planes as `rgb_to_planes` gives them (no swscale involved)."""
    height, width = planes[0].shape
    frame = av.VideoFrame(width, height, layout.pix_fmt)
    for plane, data in zip(frame.planes, planes):
        data = np.ascontiguousarray(data, dtype=layout.dtype).reshape(plane.height, -1)
        stride = plane.line_size // layout.dtype.itemsize
        if data.shape[1] != stride:  # the frame's rows are padded for alignment
            padded = np.zeros((plane.height, stride), layout.dtype)
            padded[:, : data.shape[1]] = data
            data = padded
        plane.update(data)  # type: ignore[arg-type]  # PyAV's stub says bytes; it takes any buffer
    return frame


def _coefficients(colour: Colour) -> tuple[float, float]:
    return _KR_KB.get(colour.colorspace, _KR_KB[5])


def _levels(colour: Colour, bits: int) -> tuple[float, float, float, float]:
    """(luma offset, luma scale, chroma offset, chroma scale) of code values at `bits` for the colour's range."""
    if colour.color_range == 2:  # full
        peak = float((1 << bits) - 1)
        return 0.0, peak, float(1 << (bits - 1)), peak
    s = float(1 << (bits - 8))
    return 16 * s, 219 * s, 128 * s, 224 * s


def planes_to_rgb(planes: list[torch.Tensor], layout: Layout, colour: Colour) -> torch.Tensor:
    """(N, H, W) luma and chroma planes (integer code values, any device) -> (N, 3, H, W) float RGB in [0, 1]."""
    y = planes[0].float().unsqueeze(1)
    if layout.interleaved:
        u, v = planes[1][..., 0].float().unsqueeze(1), planes[1][..., 1].float().unsqueeze(1)
    else:
        u, v = planes[1].float().unsqueeze(1), planes[2].float().unsqueeze(1)
    y_off, y_scale, c_off, c_scale = _levels(colour, layout.bits)
    y = (y - y_off) / y_scale
    chroma = (torch.cat([u, v], dim=1) - c_off) / c_scale
    if chroma.shape[-2:] != y.shape[-2:]:
        chroma = F.interpolate(chroma, size=y.shape[-2:], mode="bilinear", align_corners=False)
    kr, kb = _coefficients(colour)
    cb, cr = chroma[:, :1], chroma[:, 1:]
    r = y + 2 * (1 - kr) * cr
    b = y + 2 * (1 - kb) * cb
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return torch.cat([r, g, b], dim=1).clamp_(0, 1)


def _luma(rgb: torch.Tensor, kr: float, kb: float) -> torch.Tensor:
    # Three fused multiply-adds: twice as fast on a CPU as a weighted sum over a broadcast copy.
    return torch.add(rgb[:, 0:1] * kr, rgb[:, 1:2], alpha=1 - kr - kb).add_(rgb[:, 2:3], alpha=kb)


def _block_mean(x: torch.Tensor, sub_y: int, sub_x: int) -> torch.Tensor:
    if (sub_y, sub_x) == (1, 1):  # strided adds: faster than avg_pool2d on a CPU
        return (x[..., 0::2, 0::2] + x[..., 1::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 1::2]).mul_(0.25)
    if (sub_y, sub_x) == (0, 1):
        return (x[..., 0::2] + x[..., 1::2]).mul_(0.5)
    return F.avg_pool2d(x, (1 << sub_y, 1 << sub_x)) if sub_x or sub_y else x


def rgb_to_planes(rgb: torch.Tensor, layout: Layout, colour: Colour) -> list[torch.Tensor]:
    """(N, 3, H, W) float RGB in [0, 1] -> the layout's planes as integer code values (uint8, or int32 for deeper
    formats: torch has few uint16 kernels), on the same device."""
    kr, kb = _coefficients(colour)
    y = _luma(rgb, kr, kb)
    # Chroma of the block's mean colour (the matrix is linear: the same as averaging full-resolution chroma).
    small = _block_mean(rgb, layout.sub_y, layout.sub_x)
    y_small = _luma(small, kr, kb)
    cb = (small[:, 2:3] - y_small).mul_(1 / (2 * (1 - kb)))
    cr = (small[:, 0:1] - y_small).mul_(1 / (2 * (1 - kr)))
    y_off, y_scale, c_off, c_scale = _levels(colour, layout.bits)
    top = (1 << layout.bits) - 1
    out_dtype = torch.uint8 if layout.bits <= 8 else torch.int32

    def code(t: torch.Tensor, offset: float, scale: float) -> torch.Tensor:
        # + 0.5 then truncation: rounding half up, one pass cheaper than round() (values are >= 0 after clamp).
        return t.mul_(scale).add_(offset + 0.5).clamp_(0, top).to(out_dtype)[:, 0]

    luma, u, v = code(y, y_off, y_scale), code(cb, c_off, c_scale), code(cr, c_off, c_scale)
    if layout.interleaved:
        return [luma, torch.stack([u, v], dim=-1)]
    return [luma, u, v]
