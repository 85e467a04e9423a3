"""Thick slices as scanners make them: a slice profile (box or Gaussian) of some thickness, sampled every `spacing`,
at any ratio to the fine grid (gaps when spacing > thickness, overlap when it is smaller), and the cubic
interpolation that puts thick slices back on a fine grid. Everything is a matrix along one axis, so whole batches
are degraded in one product.

Units are fine-grid pixels (or any length, as long as all of one call share it). Fine pixel j covers [j - 0.5,
j + 0.5]; a thick slice centred at c records the integral of the profile over each fine pixel, so the weights are
exact averages, not samples of the profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

PROFILES = ("box", "gaussian")
FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@dataclass(frozen=True)
class Acquisition:
    """Thick slices `spacing` apart (centre to centre), each recording a `profile` of FWHM `thickness`."""

    spacing: float
    thickness: float
    profile: str = "box"

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"unknown slice profile {self.profile!r}: use one of {', '.join(PROFILES)}")
        if not (self.spacing > 0 and self.thickness > 0):
            raise ValueError(f"slice spacing and thickness must be positive, got {self.spacing} and {self.thickness}")

    def scaled(self, unit: float) -> Acquisition:
        """The same acquisition measured in units of `unit` (mm -> fine pixels of `unit` mm, say)."""
        return Acquisition(self.spacing / unit, self.thickness / unit, self.profile)


def _box_weights(centres: np.ndarray, fine_n: int, thickness: float) -> np.ndarray:
    lo = np.arange(fine_n) - 0.5
    hi = lo + 1.0
    a = centres[:, None] - thickness / 2
    b = centres[:, None] + thickness / 2
    return np.clip(np.minimum(hi[None, :], b) - np.maximum(lo[None, :], a), 0, None) / thickness


def _gaussian_weights(centres: np.ndarray, fine_n: int, fwhm: float) -> np.ndarray:
    sigma = fwhm * FWHM_TO_SIGMA
    edges = (np.arange(fine_n + 1) - 0.5)[None, :] - centres[:, None]
    cdf = 0.5 * (1 + _erf(edges / (sigma * math.sqrt(2))))
    return np.diff(cdf, axis=1)


def _erf(x: np.ndarray) -> np.ndarray:
    return torch.special.erf(torch.from_numpy(np.asarray(x, dtype=np.float64))).numpy()


def profile_matrix(fine_n: int, centres: np.ndarray, acquisition: Acquisition) -> np.ndarray:
    """(len(centres), fine_n): row k averages the fine pixels under slice k's profile (rows sum to 1; the part of a
    profile beyond the fine grid's ends is left out and the rest renormalised)."""
    centres = np.asarray(centres, dtype=np.float64)
    if acquisition.profile == "box":
        weights = _box_weights(centres, fine_n, acquisition.thickness)
    else:
        weights = _gaussian_weights(centres, fine_n, acquisition.thickness)
    total = weights.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("a thick slice lies entirely outside the fine grid")
    return weights / total


def _keys(x: np.ndarray, a: float = -0.75) -> np.ndarray:
    ax = np.abs(x)
    return np.where(
        ax <= 1,
        (a + 2) * ax**3 - (a + 3) * ax**2 + 1,
        np.where(ax < 2, a * ax**3 - 5 * a * ax**2 + 8 * a * ax - 4 * a, 0.0),
    )


def cubic_matrix(n_in: int, positions: np.ndarray) -> np.ndarray:
    """(len(positions), n_in): cubic interpolation of n_in samples at fractional sample indices `positions`;
    equal to torch's bicubic (align_corners=False) at the positions an integer upscale uses."""
    pos = np.asarray(positions, dtype=np.float64)
    base = np.floor(pos).astype(np.int64)
    matrix = np.zeros((len(pos), n_in))
    rows = np.arange(len(pos))
    for tap in range(-1, 3):  # Keys' cubic (a = -0.75, as torch's bicubic), edge samples repeated beyond the ends
        idx = base + tap
        np.add.at(matrix, (rows, np.clip(idx, 0, n_in - 1)), _keys(pos - idx))
    return matrix


def target_grid(n: int, spacing: float, target: float) -> tuple[int, np.ndarray]:
    """(m, positions): the m slices `target` apart that cover the extent of n slices `spacing` apart, centred on
    it (for an integer ratio r: m = n r, voxel centres where an x r upscale puts them), and their centres in units
    of the input's slice index."""
    ratio = spacing / target
    m = max(1, math.floor(n * ratio + 0.5 + 1e-9))
    positions = (n - 1) / 2.0 + (np.arange(m) - (m - 1) / 2.0) / ratio
    return m, positions


def _centres(n: int, spacing: float, first: float) -> np.ndarray:
    """Thick slice centres first, first + spacing, ... while they lie on a fine grid of n pixels."""
    return first + spacing * np.arange(math.floor((n - 1 - first) / spacing) + 1)


def simulate(fine: torch.Tensor, acquisition: Acquisition, first: float = 0.0, dim: int = -2) -> torch.Tensor:
    """Thick slices of `fine` along `dim`: centred at first, first + spacing, ... (fine pixel units) while they lie
    on the grid."""
    n = fine.shape[dim]
    centres = _centres(n, acquisition.spacing, first)
    w = torch.from_numpy(profile_matrix(n, centres, acquisition)).to(fine.device, fine.dtype)
    return torch.movedim(torch.tensordot(w, torch.movedim(fine, dim, 0), dims=1), 0, dim)


def acquire(hr: torch.Tensor, acquisition: Acquisition, first: float = 0.0) -> torch.Tensor:
    """(N, C, H, W) -> the same size: thick slices along H (`simulate`), then cubic interpolation back onto the H
    rows, which is what through-plane inference starts from."""
    h = hr.shape[-2]
    centres = _centres(h, acquisition.spacing, first)
    down = profile_matrix(h, centres, acquisition)
    up = cubic_matrix(len(centres), (np.arange(h) - first) / acquisition.spacing)
    w = torch.from_numpy(up @ down).to(hr.device, hr.dtype)  # one (H, H) matrix: down and back up
    return torch.einsum("ij,ncjw->nciw", w, hr)


def random_acquisition(
    rng: np.random.Generator,
    ratios: tuple[float, float] = (2.0, 6.0),
    thickness_ratios: tuple[float, float] = (0.5, 1.25),
    profiles: tuple[str, ...] = PROFILES,
) -> Acquisition:
    """A random acquisition in fine pixels: spacing in `ratios`, thickness/spacing in `thickness_ratios`."""
    spacing = float(rng.uniform(*ratios))
    return Acquisition(spacing, spacing * float(rng.uniform(*thickness_ratios)), str(rng.choice(profiles)))


def degrade_batch(
    hr: torch.Tensor,
    rng: np.random.Generator,
    ratios: tuple[float, float] = (2.0, 6.0),
    thickness_ratios: tuple[float, float] = (0.5, 1.25),
    profiles: tuple[str, ...] = PROFILES,
) -> torch.Tensor:
    """`acquire` on each sample of (N, C, H, W) with its own random acquisition and phase, clamped to [0, 1]."""
    out = torch.empty_like(hr)
    for i in range(hr.shape[0]):
        acquisition = random_acquisition(rng, ratios, thickness_ratios, tuple(profiles))
        out[i : i + 1] = acquire(hr[i : i + 1], acquisition, first=float(rng.uniform(0, acquisition.spacing)))
    return out.clamp_(0, 1)
