"""Slice-wise super-resolution of a volume through the one engine: in-plane, and through-plane for thick slices.

The network sees a robust 0..1 window of the volume's intensities. Where the cubic interpolation of the input
lies outside that window (bright vessels, bone, air) the output takes the cubic value, so nothing outside the
window is clipped or invented; inside it, the network's output is mapped back by the exact inverse.
"""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from medical.intensity import Window, robust_window
from medical.volume import Volume, VolumeError, resampled_affine, upscaled_affine
from srstream.engine import Upscaler
from training.acquisition import cubic_matrix, target_grid
from training.descriptor import Restores


def _sr_slices(slices: np.ndarray, upscaler: Upscaler, desc: str, progress: bool) -> np.ndarray:
    """(N, H, W) float32 in 0..1 -> (N, rH, rW) through the engine, in batches, with a progress bar."""
    out = np.empty(
        (slices.shape[0], slices.shape[1] * upscaler.scale, slices.shape[2] * upscaler.scale), dtype=np.float32
    )
    step = max(1, upscaler.batch_size)
    for start in tqdm(range(0, len(slices), step), desc=desc, unit="batch", disable=not progress, leave=False):
        batch = np.clip(slices[start : start + step], 0, 1)[..., None]
        out[start : start + step] = upscaler.upscale(batch)[..., 0]
    return out


def resample_axis(data: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    """Cubic interpolation of `data` along `axis` at fractional slice indices (torch's bicubic kernel, edges
    repeated): the one cubic resampler here, for any ratio."""
    matrix = cubic_matrix(data.shape[axis], positions)
    return np.moveaxis(np.tensordot(matrix, np.moveaxis(data, axis, 0), axes=1), 0, axis)


def cubic_upscale(data: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Cubic interpolation onto the upscaled grid (voxel centres aligned, as `upscaled_affine` assumes):
    `resample_axis` on each refined axis, at the slice centres an x r upscale has."""
    out = np.asarray(data, dtype=np.float64)
    for axis, r in enumerate(factors):
        if r > 1:
            out = resample_axis(out, axis, target_grid(out.shape[axis], 1.0, 1.0 / r)[1])
    return out


def _fuse_outside_window(sr: np.ndarray, cubic: np.ndarray, window: Window, lo: float, hi: float) -> np.ndarray:
    # Cubic rings past the data's own range at sharp edges (air/bone); an interpolation must not extrapolate.
    cubic = np.clip(cubic, lo, hi)
    outside = (cubic < window.lo) | (cubic > window.hi)
    return np.where(outside, cubic, sr)


def upscale_in_plane(volume: Volume, upscaler: Upscaler, axis: int = 2, progress: bool = True) -> Volume:
    """Every slice perpendicular to `axis` upscaled x r in both its axes."""
    if upscaler.spec.descriptor.restores is Restores.THICK_SLICES:
        raise VolumeError(f"model {upscaler.spec.descriptor.name} restores thick slices: use it through-plane")
    r = upscaler.scale
    window = robust_window(volume.data, padding=volume.meta.get("padding"))
    unit = window.forward(volume.data)
    slices = np.moveaxis(unit, axis, 0)
    sr = np.moveaxis(_sr_slices(slices, upscaler, "slices", progress), 0, axis)
    i, j, k = (1 if a == axis else r for a in range(3))
    factors = (i, j, k)
    data = _fuse_outside_window(
        window.inverse(sr),
        cubic_upscale(volume.data, factors),
        window,
        float(volume.data.min()),
        float(volume.data.max()),
    )
    return Volume(
        data,
        upscaled_affine(volume.affine, factors),
        volume.source,
        volume.dtype,
        {**volume.meta, "window": (window.lo, window.hi), "factors": factors},
    )


def _planes(volume: np.ndarray, upscaler: Upscaler, axis: int, progress: bool) -> list[np.ndarray]:
    """A through-plane model on the two plane orientations that contain `axis` (turned so that `axis` is the
    image's height, as the model was trained), one estimate each."""
    others = [a for a in range(3) if a != axis]
    estimates = []
    for along in others:
        keep = next(a for a in others if a != along)
        planes = np.moveaxis(volume, (along, axis, keep), (0, 1, 2))  # (N, fine axis, keep)
        sr = _sr_slices(planes, upscaler, f"planes {along}", progress)
        estimates.append(np.moveaxis(sr, (0, 1, 2), (along, axis, keep)))
    return estimates


def _scaled_planes(unit: np.ndarray, upscaler: Upscaler, axis: int, progress: bool) -> list[np.ndarray]:
    """An ordinary x r model through-plane: each plane upscaled x r in both its axes and averaged back to the
    original size along the axis that was not thick."""
    others = [a for a in range(3) if a != axis]
    r = upscaler.scale
    estimates = []
    for along in others:  # slices perpendicular to `along` contain `axis` and the remaining axis
        keep = next(a for a in others if a != along)
        planes = np.moveaxis(unit, (along, keep, axis), (0, 1, 2))  # (N, keep, axis)
        sr = _sr_slices(planes, upscaler, f"planes {along}", progress)  # (N, r*keep, r*axis)
        n, hk, ha = sr.shape
        sr = sr.reshape(n, hk // r, r, ha).mean(axis=2)  # back to the original size along `keep`
        estimates.append(np.moveaxis(sr, (0, 1, 2), (along, keep, axis)))
    return estimates


def upscale_through_plane(
    volume: Volume, upscaler: Upscaler, axis: int = 2, progress: bool = True, spacing: float | None = None
) -> Volume:
    """Only `axis` refined, to `spacing` mm (any ratio to the input's; default: the model's own factor), on the
    slices of the two planes that contain it, fused by averaging. The output grid covers the input's extent,
    centred on it (`target_grid`).

    With a through-plane model (scale 1, e.g. `mri-thick`, `mri-thick-x4`) the axis is first interpolated by cubic
    onto the target grid and the model restores it; an ordinary x r model (integer ratios only) upscales each plane
    x r in both its axes and is averaged back to the original size along the axis that was not thick.
    """
    current = volume.spacing[axis]
    default = upscaler.spec.descriptor.through_plane_factor
    if spacing is None:
        if not default:
            raise VolumeError(f"model {upscaler.spec.descriptor.name} takes any ratio: give the target spacing")
        spacing = current / default
    ratio = current / spacing
    if ratio <= 1 + 1e-6:
        raise VolumeError(
            f"{volume.source}: target spacing {spacing:g} mm is not finer than the slices' "
            f"{current:g} mm along axis {axis}"
        )
    n = volume.shape[axis]
    m, positions = target_grid(n, current, spacing)
    window = robust_window(volume.data, padding=volume.meta.get("padding"))
    unit = window.forward(volume.data)
    if upscaler.spec.descriptor.through_plane:
        cubic_unit = resample_axis(unit, axis, positions).astype(np.float32)
        fused = np.mean(_planes(cubic_unit, upscaler, axis, progress), axis=0)
    else:
        r = upscaler.scale
        if r < 2 or abs(ratio - r) > 1e-6:
            raise VolumeError(
                f"model {upscaler.spec.descriptor.name} upscales x{r}; {current:g} -> {spacing:g} mm is "
                f"x{ratio:g}: use a through-plane model (mri-thick) for that ratio"
            )
        fused = np.mean(_scaled_planes(unit, upscaler, axis, progress), axis=0)
    cubic = resample_axis(volume.data.astype(np.float64), axis, positions)
    data = _fuse_outside_window(
        window.inverse(fused), cubic, window, float(volume.data.min()), float(volume.data.max())
    )
    factors = tuple(ratio if a == axis else 1 for a in range(3))
    affine = resampled_affine(volume.affine, axis, float(positions[0]), 1.0 / ratio)
    return Volume(
        data,
        affine,
        volume.source,
        volume.dtype,
        {**volume.meta, "window": (window.lo, window.hi), "factors": factors, "slices": (n, m)},
    )
