"""Antialiased Lanczos-3 resampling of (N, C, H, W) tensors on whatever device they are on.

The filter is Pillow's (and ffmpeg's `flags=lanczos`): when shrinking, the kernel is stretched by the factor, so
it averages what it drops instead of aliasing. Separable: one pass per axis, each a gather of the few input
pixels every output pixel reads, so it costs O(taps) per pixel, not a dense matrix product.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

SUPPORT = 3.0


def _lanczos(x: np.ndarray) -> np.ndarray:
    return np.where(np.abs(x) < SUPPORT, np.sinc(x) * np.sinc(x / SUPPORT), 0.0)


@lru_cache(maxsize=32)
def coefficients(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights), each (size_out, taps): output pixel i is sum_k weights[i, k] * in[indices[i, k]].

    Pixel centres sit at (i + 0.5) / scale, as in Pillow; taps falling off the edge are dropped and the rest
    renormalised (no padding that would darken the border)."""
    scale = size_in / size_out
    stretch = max(scale, 1.0)
    support = SUPPORT * stretch
    centre = (np.arange(size_out) + 0.5) * scale
    first = np.maximum(np.floor(centre - support + 0.5).astype(np.int64), 0)
    last = np.minimum(np.floor(centre + support + 0.5).astype(np.int64), size_in)
    taps = int((last - first).max())
    index = first[:, None] + np.arange(taps)[None, :]
    weight = _lanczos((index - centre[:, None] + 0.5) / stretch)
    weight[index >= last[:, None]] = 0.0
    weight /= weight.sum(axis=1, keepdims=True)
    return np.minimum(index, size_in - 1), weight.astype(np.float32)


def _resize_last_axis(x: torch.Tensor, size_out: int) -> torch.Tensor:
    if x.shape[-1] == size_out:
        return x
    index, weight = coefficients(x.shape[-1], size_out)
    index_t = torch.from_numpy(index).to(x.device)
    weight_t = torch.from_numpy(weight).to(x.device, x.dtype)
    return (x[..., index_t] * weight_t).sum(dim=-1)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, size[1], size[0]), Lanczos-3, antialiased; not clamped (Lanczos rings)."""
    width, height = size
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width}x{height}")
    if x.dtype not in (torch.float32, torch.float64):
        x = x.float()
    # The shrinking axis first keeps the intermediate image small.
    if height / x.shape[-2] <= width / x.shape[-1]:
        y = _resize_last_axis(x.transpose(-1, -2), height).transpose(-1, -2)
        return _resize_last_axis(y, width)
    y = _resize_last_axis(x, width)
    return _resize_last_axis(y.transpose(-1, -2), height).transpose(-1, -2)


def resize_to(x: torch.Tensor, size: tuple[int, int] | None) -> torch.Tensor:
    """`x` resampled to `size` (width, height) by `resize`; as it is when no size is asked for or it has it."""
    if size is None or tuple(size) == (x.shape[-1], x.shape[-2]):
        return x
    return resize(x, size)
