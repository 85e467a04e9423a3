"""A before/after PNG montage of the middle slice: input (nearest-neighbour to the output grid) beside output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from medical.volume import Volume


def _middle(volume: Volume, axis: int) -> np.ndarray:
    return np.take(volume.data, volume.shape[axis] // 2, axis=axis)


def write_preview(before: Volume, after: Volume, path: str | Path, axis: int = 2) -> Path:
    """Middle slice perpendicular to a non-upscaled axis where there is one, windowed like the volume."""
    factors = after.meta.get("factors", (1, 1, 1))
    view_axis = axis if factors[axis] == 1 else next(a for a in range(3) if factors[a] == 1)
    lo, hi = after.meta.get("window", (float(before.data.min()), float(before.data.max())))
    right = _middle(after, view_axis)
    left = _middle(before, view_axis)
    reps = [r for a, r in enumerate(factors) if a != view_axis]
    left = np.repeat(np.repeat(left, reps[0], axis=0), reps[1], axis=1)
    montage = np.concatenate([left, np.full((left.shape[0], 4), hi), right], axis=1)
    grey = (np.clip((montage - lo) / max(hi - lo, 1e-9), 0, 1) * 255).astype(np.uint8)
    path = Path(path)
    Image.fromarray(np.rot90(grey)).save(path)  # rotated so superior/anterior is up for axial RAS data
    return path
