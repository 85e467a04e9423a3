"""Frames in and out of the engine: numpy (H, W[, C]) / (N, H, W, C) or torch (N, C, H, W), uint8, uint16 or
float in [0, 1], to and from float NCHW; alpha split off (and upscaled by bicubic), grey run through RGB models.

Knows nothing of models, backends or tiles: the engine hands it the channels a model takes and a device mover.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from srstream.errors import EngineError

Mover = Callable[[torch.Tensor], torch.Tensor]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 / uint16 / float samples -> float32 in [0, 1]."""
    if x.dtype == torch.uint8:
        return x.float().div_(255)
    if x.dtype == torch.uint16:
        return x.float().div_(65535)
    if x.dtype == torch.int32 or x.dtype == torch.int16:
        raise EngineError(f"frames of dtype {x.dtype} are not supported: use uint8, uint16 or float")
    return x.float()


def from_float(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """float in [0, 1] -> `dtype` (integers rounded to their full range)."""
    if dtype == torch.uint8:
        return y.mul(255).round_().to(torch.uint8)
    if dtype == torch.uint16:
        return y.mul(65535).round_().to(torch.int32).to(torch.uint16)
    return y.to(dtype)


def host_tensor(array: np.ndarray) -> torch.Tensor:
    """A torch view of `array`, or a copy where torch cannot share it."""
    # torch cannot honour a read-only array (an image decoder's buffer, say): copy it rather than share it.
    array = np.ascontiguousarray(array)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def fit_channels(x: torch.Tensor, channels: int, model: str) -> tuple[torch.Tensor, bool]:
    """(N, C, H, W) frames as a model of `channels` takes them, and whether they were grey run as RGB (then the
    output goes back through `to_grey`)."""
    if x.ndim != 4:
        raise EngineError(f"expected (N, C, H, W) frames, got shape {tuple(x.shape)}")
    c = x.shape[1]
    if c == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1), True
    if c != channels:
        raise EngineError(f"model {model} takes {channels}-channel frames, got {c} channels")
    return x, False


def to_grey(y: torch.Tensor) -> torch.Tensor:
    """An RGB output of grey frames back to one channel: the mean of the three."""
    return y.mean(dim=1, keepdim=True)


@dataclass
class NumpyFrames:
    """Numpy frames taken apart for the engine: colour and alpha as host NHWC tensors, and how to put the output
    back into the caller's shape and dtype."""

    color: torch.Tensor
    alpha: torch.Tensor | None
    dtype: torch.dtype
    ndim: int

    @classmethod
    def split(cls, frames: np.ndarray) -> NumpyFrames:
        """Check the shape, make one batch of it and set alpha aside (it is upscaled by bicubic, not the model)."""
        array = np.asarray(frames)
        if array.ndim not in (2, 3, 4) or (array.ndim > 2 and array.shape[-1] not in (1, 3, 4)):
            raise EngineError(f"expected an image (H, W[, C]) or frames (N, H, W, C), got shape {array.shape}")
        batch = array.reshape((1, *array.shape[:2], -1)) if array.ndim < 4 else array
        alpha = None
        if batch.shape[-1] == 4:
            batch, alpha = batch[..., :3], host_tensor(batch[..., 3:])
        dtype = torch.from_numpy(np.empty(0, batch.dtype)).dtype
        return cls(host_tensor(batch), alpha, dtype, array.ndim)

    def color_nchw(self, move: Mover) -> torch.Tensor:
        """The colour as float NCHW; integers cross to the device as they are (1 byte a sample for 8-bit) and
        become floats there."""
        return to_float(move(self.color).permute(0, 3, 1, 2))

    def join(self, y: torch.Tensor, move: Mover) -> np.ndarray:
        """The upscaled colour `y` (float NCHW) with the alpha upscaled beside it, in the caller's shape and dtype."""
        if self.alpha is not None:
            a = to_float(move(self.alpha).permute(0, 3, 1, 2))
            a = torch.nn.functional.interpolate(a, size=y.shape[-2:], mode="bicubic", antialias=True).clamp(0, 1)
            y = torch.cat([y, a.to(y.device)], dim=1)
        out = from_float(y, self.dtype).permute(0, 2, 3, 1).cpu().numpy()
        if self.ndim == 2:
            out = out[..., 0]
        return out[0] if self.ndim < 4 else out
