"""Degradations that make LR from HR: MATLAB-compatible bicubic, and Gaussian blur + subsampling (the SRGAN seeds).

Both work on float tensors (N, C, H, W) and are written as separable matrix products, so a whole batch is degraded
in two matmuls.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F


def _cubic(x: torch.Tensor) -> torch.Tensor:
    # Keys' kernel with a = -0.5, as MATLAB's imresize uses.
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def _bicubic_matrix(in_size: int, out_size: int, scale: float, antialias: bool) -> torch.Tensor:
    """The (out_size, in_size) matrix MATLAB's imresize applies along one axis (symmetric boundary)."""
    kernel_scale = scale if (antialias and scale < 1) else 1.0
    width = 4.0 / kernel_scale
    u = torch.arange(1, out_size + 1, dtype=torch.float64)
    x = u / scale + 0.5 * (1 - 1 / scale)
    left = torch.floor(x - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    weights = kernel_scale * _cubic(kernel_scale * (x[:, None] - idx))
    weights = weights / weights.sum(dim=1, keepdim=True)
    # MATLAB mirrors indices outside the image (symmetric padding, edge sample repeated).
    mirror = torch.cat([torch.arange(in_size), torch.arange(in_size - 1, -1, -1)])
    idx0 = mirror[torch.remainder(idx.long() - 1, 2 * in_size)]
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    matrix.scatter_add_(1, idx0, weights)
    return matrix


def imresize(images: torch.Tensor, scale: float, antialias: bool = True) -> torch.Tensor:
    """MATLAB `imresize(img, scale, 'bicubic')` on float (N, C, H, W); the result is not rounded or clamped."""
    h, w = images.shape[-2:]
    out_h, out_w = math.ceil(h * scale), math.ceil(w * scale)
    mh = _bicubic_matrix(h, out_h, float(scale), antialias).to(images.device, images.dtype)
    mw = _bicubic_matrix(w, out_w, float(scale), antialias).to(images.device, images.dtype)
    return mh @ images @ mw.T


def bicubic_downsample(hr: torch.Tensor, factor: int) -> torch.Tensor:
    """The benchmark protocol's LR: antialiased MATLAB bicubic by 1/factor."""
    return imresize(hr, 1.0 / factor)


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of radius ceil(3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_downsample(hr: torch.Tensor, factor: int, sigma: float) -> torch.Tensor:
    """Gaussian blur (sigma in HR pixels; 0 = none), reflect padding, then keep every `factor`-th pixel."""
    if sigma > 0:
        k = gaussian_kernel(sigma).to(hr.device, hr.dtype)
        c = hr.shape[1]
        pad = k.numel() // 2
        x = F.pad(hr, (pad, pad, pad, pad), mode="reflect")
        x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        hr = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    # Take the sample nearest each LR pixel's centre so LR and HR stay aligned like bicubic's are.
    offset = (factor - 1) // 2
    return hr[..., offset::factor, offset::factor]


def box_downsample(hr: torch.Tensor, factor: int) -> torch.Tensor:
    """The mean of each `factor` x `factor` block: what a detector `factor` times larger (a thick slice) records."""
    return F.avg_pool2d(hr, factor)


def cubic_stretch(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Cubic interpolation of the last axis onto a grid `factor` times finer, sample centres aligned."""
    shape = x.shape
    up = F.interpolate(
        x.reshape(-1, 1, 1, shape[-1]), size=(1, shape[-1] * factor), mode="bicubic", align_corners=False
    )
    return up.reshape(*shape[:-1], shape[-1] * factor)


def slab_degrade(hr: torch.Tensor, thickness: int) -> torch.Tensor:
    """Thick slices along the height axis: each run of `thickness` rows averaged, then `cubic_stretch` back onto
    the HR rows (what through-plane inference starts from), so LR and HR have the same size."""
    n, c, h, w = hr.shape
    if h % thickness:
        raise ValueError(f"patch height {h} is not a multiple of the slab thickness {thickness}")
    thick = hr.reshape(n, c, h // thickness, thickness, w).mean(dim=3)
    return cubic_stretch(thick.transpose(2, 3), thickness).transpose(2, 3)


DEGRADATIONS = ("bicubic", "gaussian", "box", "slab", "acquisition")


def degrade(hr: torch.Tensor, factor: int, kind: str = "bicubic", sigma: float = 0.0) -> torch.Tensor:
    """LR from HR in [0, 1] by `kind` (see DEGRADATIONS; for 'slab', `factor` is the slice thickness and the
    result keeps the HR size); the result is clamped to [0, 1]."""
    if kind == "bicubic":
        lr = bicubic_downsample(hr, factor)
    elif kind == "gaussian":
        lr = gaussian_downsample(hr, factor, sigma)
    elif kind == "box":
        lr = box_downsample(hr, factor)
    elif kind == "slab":
        lr = slab_degrade(hr, factor)
    elif kind == "acquisition":
        raise ValueError("the 'acquisition' degradation draws its parameters: use training.acquisition.degrade_batch")
    else:
        raise ValueError(f"unknown degradation {kind!r}: use one of {', '.join(DEGRADATIONS)}")
    return lr.clamp(0, 1)
