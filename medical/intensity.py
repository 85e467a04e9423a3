"""Intensities: a robust window for the network, the exact inverse out, and casting back without silent clipping."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """Real values lo..hi map to 0..1 for the network (percentiles of the volume, so outliers do not squash it)."""

    lo: float
    hi: float

    def forward(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.lo) / (self.hi - self.lo)).astype(np.float32)

    def inverse(self, unit: np.ndarray) -> np.ndarray:
        return unit.astype(np.float64) * (self.hi - self.lo) + self.lo


def robust_window(data: np.ndarray, low: float = 0.5, high: float = 99.5, padding: float | None = None) -> Window:
    """Percentile window over the volume's voxels, those equal to `padding` (DICOM's PixelPaddingValue: outside
    a CT's field of view, not image) left out; a constant volume gets a unit-wide window so nothing divides by
    zero."""
    image = data[data != padding] if padding is not None and np.any(data != padding) else data
    lo, hi = np.percentile(image, [low, high])
    if hi <= lo:
        lo, hi = float(data.min()), float(data.max())
    if hi <= lo:
        hi = lo + 1.0
    return Window(float(lo), float(hi))


def cast_like(values: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, int]:
    """Round and cast to the input's stored dtype; returns the array and how many voxels had to be clipped to fit."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return values.astype(dtype), 0
    info = np.iinfo(dtype)
    rounded = np.rint(values)
    clipped = int(np.count_nonzero((rounded < info.min) | (rounded > info.max)))
    return np.clip(rounded, info.min, info.max).astype(dtype), clipped
