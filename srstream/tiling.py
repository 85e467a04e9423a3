"""Split a batch into overlapping tiles, run a function on each, stitch: knows nothing of models or devices."""

from __future__ import annotations

from collections.abc import Callable

import torch


def tile_grid(size: int, tile: int) -> list[tuple[int, int]]:
    """(start, end) of the tile cores covering [0, size)."""
    return [(start, min(start + tile, size)) for start in range(0, size, tile)]


def run_tiled(
    x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], scale: int, tile: int, pad: int
) -> torch.Tensor:
    """`fn` over tiles of `tile` px with `pad` px of context each side, stitched; equals `fn(x)` when pad covers
    the receptive field of `fn`. `x` is (N, C, H, W) and `fn` must scale H and W by `scale`."""
    n, _, h, w = x.shape
    if tile <= 0 or (h <= tile and w <= tile):
        return fn(x)
    out = None
    for top, bottom in tile_grid(h, tile):
        for left, right in tile_grid(w, tile):
            t0, b0 = max(top - pad, 0), min(bottom + pad, h)
            l0, r0 = max(left - pad, 0), min(right + pad, w)
            y = fn(x[:, :, t0:b0, l0:r0])
            if out is None:
                out = y.new_empty((n, y.shape[1], h * scale, w * scale))
            core = y[:, :, (top - t0) * scale : (bottom - t0) * scale, (left - l0) * scale : (right - l0) * scale]
            out[:, :, top * scale : bottom * scale, left * scale : right * scale] = core
    if out is None:
        raise ValueError(f"cannot tile frames of shape {tuple(x.shape)}: a side is 0")
    return out
