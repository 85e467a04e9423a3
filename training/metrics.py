"""PSNR and SSIM on the Y channel (BT.601), border shaved: the SR benchmark protocol."""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torchmetrics.functional.image import structural_similarity_index_measure


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an 8-bit RGB (H, W, 3) image in [16, 235] as float64 (MATLAB's rgb2ycbcr).

    A grey (H, W) image is its own luma and is returned unscaled, as the benchmark scripts leave grey images alone.
    """
    x = image.astype(np.float64)
    if x.ndim == 2:
        return x
    return 16.0 + (65.481 * x[..., 0] + 128.553 * x[..., 1] + 24.966 * x[..., 2]) / 255.0


def _shaved_y(image: np.ndarray, border: int) -> np.ndarray:
    y = rgb_to_y(image)
    return y[border:-border, border:-border] if border > 0 else y


def psnr_y(output: np.ndarray, reference: np.ndarray, border: int) -> float:
    """PSNR in dB between two 8-bit images on Y with `border` pixels shaved off each side."""
    if output.shape != reference.shape:
        raise ValueError(f"shapes differ: {output.shape} vs {reference.shape}")
    mse = np.mean((_shaved_y(output, border) - _shaved_y(reference, border)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim_y(output: np.ndarray, reference: np.ndarray, border: int) -> float:
    """SSIM (Gaussian window 11, sigma 1.5, as Wang et al.) between two 8-bit images on Y, border shaved."""
    a = torch.from_numpy(_shaved_y(output, border))[None, None]
    b = torch.from_numpy(_shaved_y(reference, border))[None, None]
    ssim = structural_similarity_index_measure(a, b, data_range=255.0, gaussian_kernel=True, sigma=1.5, kernel_size=11)
    return float(cast(torch.Tensor, ssim))  # a tuple only with return_full_image or return_contrast_sensitivity
