"""How big the tiles are: whole frames when their activations fit the memory budget, else square tiles that do;
and on a CUDA out-of-memory error, halve the tiles and try again. Beside `tiling.py`, which only cuts and stitches.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

from srstream.errors import EngineError
from srstream.host_memory import available_memory
from srstream.tiling import run_tiled

log = logging.getLogger("srstream")
MIN_TILE = 32
MEMORY_SHARE = 0.5  # of the free device memory (or available RAM) that one engine call may fill with activations


@dataclass
class TileBudget:
    """`tile`: the LR tile side (0: only when a frame's activations would not fit `memory_budget` bytes, by default
    MEMORY_SHARE of what `device` has free; None: never tile); `bytes_per_pixel`: activations per input pixel of
    one frame."""

    tile: int | None
    memory_budget: int | None
    bytes_per_pixel: int
    device: torch.device

    def budget(self) -> int:
        """Bytes of activations one call may hold."""
        if self.memory_budget is not None:
            return self.memory_budget
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
        else:
            free = available_memory()
        return int(free * MEMORY_SHARE)

    def tile_size(self, h: int, w: int, n: int = 1) -> int:
        """0 when n frames of h x w fit the memory budget whole, else the side of the square LR tiles that do."""
        if self.tile is None:
            return 0
        if self.tile > 0:
            return self.tile
        per_pixel = self.bytes_per_pixel * n
        budget = self.budget()
        if h * w * per_pixel <= budget:
            return 0
        return max(MIN_TILE, int((budget / per_pixel) ** 0.5))


def run_shrinking(
    x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], scale: int, tile: int, pad: int
) -> torch.Tensor:
    """`run_tiled(x, fn, scale, tile, pad)`, halving the tiles after each CUDA out-of-memory error down to
    MIN_TILE; below that, an EngineError that says what to change."""
    while True:
        try:
            return run_tiled(x, fn, scale, tile, pad)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            side = tile or max(x.shape[-2:])
            if side // 2 < MIN_TILE:
                raise EngineError(
                    f"out of GPU memory even with {side}px tiles and batch {x.shape[0]}; "
                    "lower --batch or use --backend cpu"
                ) from None
            tile = side // 2
            log.warning("srstream: out of GPU memory, retrying with %dpx tiles", tile)
