"""A small visible mark burnt into the upscaled picture ("upscaled by srstream MODEL", bottom left), so that a frame
shown out of context still says it is not what the camera saw. Drawn on the engine's output, before encoding, so
every output of the stream (recording, re-stream) carries it."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


@lru_cache(maxsize=8)
def _mask(text: str, height: int) -> np.ndarray:
    """(2, h, w) float alphas of the text and of its dark outline, for a frame `height` pixels high."""
    size = max(10, height // 36)
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    pad = max(2, size // 5)
    width, high = int(right - left) + 2 * pad, int(bottom - top) + 2 * pad
    fill, outline = Image.new("L", (width, high)), Image.new("L", (width, high))
    origin = (pad - left, pad - top)
    ImageDraw.Draw(outline).text(origin, text, font=font, fill=255, stroke_width=max(1, size // 10), stroke_fill=255)
    ImageDraw.Draw(fill).text(origin, text, font=font, fill=255)
    return np.stack([np.asarray(fill), np.asarray(outline)]).astype(np.float32) / 255.0


@lru_cache(maxsize=8)
def _mask_on(text: str, height: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """`_mask` on the engine's device, made once per size (not at every engine call)."""
    return torch.from_numpy(_mask(text, height)).to(device, dtype)


def burn_label(y: torch.Tensor, text: str) -> torch.Tensor:
    """The engine's (N, 3, H, W) output in [0, 1] with `text` in white on a dark outline at the bottom left (in
    place where it fits; a frame too small for it is left as it is)."""
    height, width = y.shape[-2:]
    fill, outline = _mask_on(text, height, y.device, y.dtype)
    h, w = fill.shape
    margin = max(2, height // 90)
    if h + margin > height or w + margin > width:
        return y
    region = y[..., height - margin - h : height - margin, margin : margin + w]
    region.mul_(1 - 0.8 * outline).add_(fill * (1 - region))
    return y
