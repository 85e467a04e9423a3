"""Slice-wise super-resolution of a volume through the one engine: in-plane, and through-plane for thick slices.

The network sees a robust 0..1 window of the volume's intensities. Where the cubic interpolation of the input
lies outside that window (bright vessels, bone, air) the output takes the cubic value, so nothing outside the
window is clipped or invented; inside it, the network's output is mapped back by the exact inverse.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from medical.intensity import Window, robust_window
from medical.volume import Volume, upscaled_affine
from srstream.engine import Upscaler
from srstream.models import ModelSpec
from training.degrade import cubic_stretch
from training.weights import slab_thickness as card_slab_thickness


def _sr_slices(slices: np.ndarray, upscaler: Upscaler, desc: str, progress: bool) -> np.ndarray:
    """(N, H, W) float32 in 0..1 -> (N, rH, rW) through the engine, in batches, with a progress bar."""
    out = np.empty((slices.shape[0], slices.shape[1] * upscaler.scale, slices.shape[2] * upscaler.scale),
                   dtype=np.float32)
    step = max(1, upscaler.batch_size)
    for start in tqdm(range(0, len(slices), step), desc=desc, unit="batch", disable=not progress, leave=False):
        batch = np.clip(slices[start:start + step], 0, 1)[..., None]
        out[start:start + step] = upscaler.upscale(batch)[..., 0]
    return out


def cubic_upscale(data: np.ndarray, factors: tuple[int, int, int]) -> np.ndarray:
    """Cubic interpolation onto the upscaled grid (voxel centres aligned, as `upscaled_affine` assumes)."""
    out = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    for axis, r in enumerate(factors):
        if r > 1:
            out = cubic_stretch(out.movedim(axis, -1), r).movedim(-1, axis)
    return out.double().numpy()


def _fuse_outside_window(sr: np.ndarray, cubic: np.ndarray, window: Window, lo: float, hi: float) -> np.ndarray:
    # Cubic rings past the data's own range at sharp edges (air/bone); an interpolation must not extrapolate.
    cubic = np.clip(cubic, lo, hi)
    outside = (cubic < window.lo) | (cubic > window.hi)
    return np.where(outside, cubic, sr)


def upscale_in_plane(volume: Volume, upscaler: Upscaler, axis: int = 2, progress: bool = True) -> Volume:
    """Every slice perpendicular to `axis` upscaled x r in both its axes."""
    if slab_thickness(upscaler.spec):
        raise ValueError(f"model {upscaler.spec.name} restores thick slices: use it through-plane")
    r = upscaler.scale
    window = robust_window(volume.data)
    unit = window.forward(volume.data)
    slices = np.moveaxis(unit, axis, 0)
    sr = np.moveaxis(_sr_slices(slices, upscaler, "slices", progress), 0, axis)
    factors = tuple(1 if a == axis else r for a in range(3))
    data = _fuse_outside_window(window.inverse(sr), cubic_upscale(volume.data, factors), window,
                                float(volume.data.min()), float(volume.data.max()))
    return Volume(data, upscaled_affine(volume.affine, factors), volume.source, volume.dtype,
                  {**volume.meta, "window": (window.lo, window.hi), "factors": factors})


def slab_thickness(spec: ModelSpec) -> int:
    """The slice thickness a through-plane restoration model (scale 1, 'slab' degradation) undoes, else 0."""
    return card_slab_thickness({**spec.card, "scale": spec.scale})


def through_plane_factor(upscaler: Upscaler) -> int:
    """How much `upscale_through_plane` refines the slice axis with this model."""
    return slab_thickness(upscaler.spec) or upscaler.scale


def _through_plane_estimates(unit: np.ndarray, upscaler: Upscaler, axis: int, progress: bool) -> list[np.ndarray]:
    """One estimate per plane orientation containing `axis`, each on the grid refined x r along `axis`."""
    others = [a for a in range(3) if a != axis]
    thickness = slab_thickness(upscaler.spec)
    estimates = []
    if thickness:
        # SMORE's framing: cubic onto the fine grid, then a model that undoes slab blur along the image's height.
        cubic = cubic_upscale(unit, tuple(thickness if a == axis else 1 for a in range(3))).astype(np.float32)
        for along in others:
            keep = next(a for a in others if a != along)
            planes = np.moveaxis(cubic, (along, axis, keep), (0, 1, 2))  # (N, fine axis, keep)
            sr = _sr_slices(planes, upscaler, f"planes {along}", progress)
            estimates.append(np.moveaxis(sr, (0, 1, 2), (along, axis, keep)))
        return estimates
    r = upscaler.scale
    for along in others:  # slices perpendicular to `along` contain `axis` and the remaining axis
        keep = next(a for a in others if a != along)
        planes = np.moveaxis(unit, (along, keep, axis), (0, 1, 2))  # (N, keep, axis)
        sr = _sr_slices(planes, upscaler, f"planes {along}", progress)  # (N, r*keep, r*axis)
        n, hk, ha = sr.shape
        sr = sr.reshape(n, hk // r, r, ha).mean(axis=2)  # back to the original size along `keep`
        estimates.append(np.moveaxis(sr, (0, 1, 2), (along, keep, axis)))
    return estimates


def upscale_through_plane(volume: Volume, upscaler: Upscaler, axis: int = 2, progress: bool = True) -> Volume:
    """Only `axis` refined x r, on the slices of the two planes that contain it, fused by averaging.

    With a through-plane model (scale 1, trained on slab blur, e.g. `mri-thick-x4`) the axis is first interpolated
    by cubic and the model restores it; with an ordinary x r model each plane is upscaled x r in both its axes and
    averaged back to the original size along the axis that was not thick.
    """
    r = through_plane_factor(upscaler)
    if r < 2:
        raise ValueError(f"model {upscaler.spec.name} does not upscale: through-plane needs an x2/x4 model or a "
                         "through-plane (slab) model")
    window = robust_window(volume.data)
    unit = window.forward(volume.data)
    fused = np.mean(_through_plane_estimates(unit, upscaler, axis, progress), axis=0)
    factors = tuple(r if a == axis else 1 for a in range(3))
    data = _fuse_outside_window(window.inverse(fused), cubic_upscale(volume.data, factors), window,
                                float(volume.data.min()), float(volume.data.max()))
    return Volume(data, upscaled_affine(volume.affine, factors), volume.source, volume.dtype,
                  {**volume.meta, "window": (window.lo, window.hi), "factors": factors})
