"""Sides padded up to a multiple for networks that need one: reflect-pad, run, crop; knows nothing of models."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Net = Callable[[torch.Tensor], torch.Tensor]


def run_padded(fn: Net, x: torch.Tensor, multiple: int, scale: int) -> torch.Tensor:
    """`fn(x)` for a `fn` that needs (H, W) multiples of `multiple` and scales them by `scale`: x is padded at the
    bottom and right (reflected, or replicated where it is too small to reflect) and the output cropped back."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not (ph or pw):
        return fn(x)
    x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    return fn(x)[..., : h * scale, : w * scale]
