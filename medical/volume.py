"""One in-memory volume type for every reader and writer, and the geometry of upscaling it.

Convention: `data` is indexed (i, j, k) and `affine` maps voxel indices to scanner coordinates in millimetres in
NIfTI's RAS+ frame (x grows from the subject's left to right, y from posterior to anterior, z from inferior to
superior), exactly what nibabel's `img.affine` holds. DICOM's LPS+ patient coordinates are converted on the way in
and out (x and y negated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.errors import SrstreamError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class VolumeError(SrstreamError, ValueError):
    """A volume cannot be read, processed or written; the message names the file."""


@dataclass
class Volume:
    """Voxels (i, j, k), a 4x4 voxel-to-RAS+ affine in mm, the stored dtype, and what the source said about itself."""

    data: np.ndarray
    affine: np.ndarray
    source: str
    dtype: np.dtype
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size along i, j, k in mm."""
        i, j, k = (float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))
        return i, j, k

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)


def upscaled_affine(affine: np.ndarray, factors: tuple[float, float, float]) -> np.ndarray:
    """The affine of a volume whose axis a is upscaled by factors[a], voxel centres kept aligned.

    Each column shrinks by 1/r, and the origin moves by A·((1/r - 1)/2) along that axis, so the new grid covers
    exactly the same extent as the old one (the first new voxel centre sits a quarter-voxel inside for r = 2).
    """
    out = np.array(affine, dtype=np.float64)
    for axis, r in enumerate(factors):
        if r == 1:
            continue
        column = affine[:3, axis]
        out[:3, axis] = column / r
        out[:3, 3] += column * ((1.0 / r - 1.0) / 2.0)
    return out


def resampled_affine(affine: np.ndarray, axis: int, first: float, step: float) -> np.ndarray:
    """The affine of a volume resampled along `axis` onto slices at input indices first, first + step, ...: what
    any ratio of through-plane upscaling gives (`upscaled_affine` is the integer case: step 1/r)."""
    out = np.array(affine, dtype=np.float64)
    column = affine[:3, axis]
    out[:3, axis] = column * step
    out[:3, 3] += column * first
    return out
