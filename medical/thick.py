"""Thick slices made from a fine volume, as an acquisition would record them: the ground truth of through-plane
benchmarks and tests (`benchmarks/mri_eval.py`), at any spacing, thickness and profile.

The thick slices are placed so that upscaling them back to the fine spacing (`target_grid`, centred on their
extent) lands exactly on fine voxels, which are then the truth to compare with.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from medical.volume import Volume, VolumeError, resampled_affine
from training.acquisition import Acquisition, simulate, target_grid


def thicken(volume: Volume, axis: int, acquisition: Acquisition) -> tuple[Volume, slice]:
    """(thick volume, fine slices its upscaled grid covers) for `acquisition` in mm along `axis`."""
    fine = volume.spacing[axis]
    pixels = acquisition.scaled(fine)
    ratio = pixels.spacing
    n_fine = volume.shape[axis]
    n = math.floor((n_fine - pixels.thickness) / ratio) + 1
    while n > 1:
        m, _ = target_grid(n, acquisition.spacing, fine)
        first = (m - 1) / 2.0 - (n - 1) * ratio / 2.0  # the fine grid's first centre sits on fine voxel 0
        # Every slice centre on the fine grid (a profile wider than the spacing is cut at the volume's ends).
        if m <= n_fine and first >= -0.5 and first + (n - 1) * ratio <= n_fine - 0.5:
            break
        n -= 1
    else:
        raise VolumeError(f"{volume.source}: {n_fine} slices are too few for {acquisition}")
    data = torch.from_numpy(np.ascontiguousarray(volume.data, dtype=np.float64))
    thick = simulate(data, pixels, first=first, dim=axis).numpy()
    thick = np.take(thick, range(n), axis=axis)
    affine = resampled_affine(volume.affine, axis, first, ratio)
    meta = {**volume.meta, "slice_thickness": acquisition.thickness}
    return Volume(thick, affine, volume.source, volume.dtype, meta), slice(0, m)
