"""Self-ensemble (test-time augmentation): run a function on flipped and transposed views, undo each, average."""

from __future__ import annotations

from collections.abc import Callable

import torch

View = tuple[tuple[int, ...], bool]


def tta_views(transpose: bool = True) -> list[View]:
    """The self-ensemble's views as (flipped dims, transposed): the 8 symmetries of the square, or only the 4 flips
    for a model whose degradation has a direction (a through-plane model's slab blur runs along the height)."""
    flips = [(), (-1,), (-2,), (-2, -1)]
    return [(f, t) for t in ((False, True) if transpose else (False,)) for f in flips]


def view(x: torch.Tensor, flips: tuple[int, ...], transposed: bool) -> torch.Tensor:
    """`x` flipped along `flips`, then transposed (H <-> W) if asked."""
    y = torch.flip(x, flips) if flips else x
    return y.transpose(-1, -2).contiguous() if transposed else y


def unview(y: torch.Tensor, flips: tuple[int, ...], transposed: bool) -> torch.Tensor:
    """The inverse of `view`: undo the transpose first, then the flips."""
    y = y.transpose(-1, -2) if transposed else y
    return torch.flip(y, flips) if flips else y


def self_ensemble(x: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], transpose: bool = True) -> torch.Tensor:
    """The mean of `fn` over the views of `x` (8, or 4 without transposes), each mapped back."""
    views = tta_views(transpose)
    y = None
    for flips, transposed in views:
        out = unview(fn(view(x, flips, transposed)), flips, transposed)
        y = out if y is None else y.add_(out)
    assert y is not None  # tta_views gives at least the four flips
    return y.div_(len(views))
