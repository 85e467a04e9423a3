"""Which slice profile made a volume's thick slices: box or Gaussian (FWHM = thickness), from the volume itself.

The in-plane axes are sharp and the slice axis is not; the slice profile is what blurs one into the other (the
premise of SMORE and ECLARE, whose ESPRESO step learns the profile). Here each candidate profile degrades the
volume's in-plane lines to the slice axis's sampling, and the one whose mean power spectrum matches the slice
axis's own best (in log power, over the band both resolve) is taken. The errors are kept as the evidence.
"""

from __future__ import annotations

import numpy as np

from medical.intensity import robust_window
from medical.volume import Volume, VolumeError
from training.acquisition import PROFILES, Acquisition, profile_matrix

MIN_SAMPLES = 32  # fewer thick samples along a line and the spectrum cannot tell the profiles apart (measured)
MARGIN = 1.25  # the preferred profile's error must be this many times smaller than the other's to decide


def _lines(data: np.ndarray, axis: int) -> np.ndarray:
    """Every line of `data` along `axis`, (count, length), keeping those that cross the object (not air)."""
    lines = np.moveaxis(data, axis, -1).reshape(-1, data.shape[axis])
    keep = lines.mean(axis=1) > 0.1
    return lines[keep] if keep.sum() >= 8 else lines


def _spectrum(lines: np.ndarray, length: int) -> np.ndarray:
    """Mean power spectrum of the lines' centred `length` samples, detrended and Hann-windowed."""
    start = (lines.shape[1] - length) // 2
    x = lines[:, start : start + length]
    x = x - x.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(x * np.hanning(length), axis=1)) ** 2
    return power.mean(axis=0)


def profile_errors(volume: Volume, axis: int, spacing: float, thickness: float) -> dict[str, float]:
    """For each profile, how far the spectrum of in-plane lines degraded by it lies from the slice axis's."""
    unit = np.clip(robust_window(volume.data, padding=volume.meta.get("padding")).forward(volume.data), 0, 1)
    target = _lines(unit, axis)
    errors = {}
    simulated: dict[str, list[np.ndarray]] = {p: [] for p in PROFILES}
    for other in (a for a in range(3) if a != axis):
        pixel = volume.spacing[other]
        if pixel >= spacing:
            continue
        lines = _lines(unit, other)
        n = lines.shape[1]
        for profile in PROFILES:
            acquisition = Acquisition(spacing, thickness, profile).scaled(pixel)
            count = int((n - 1) // acquisition.spacing) + 1
            centres = (n - 1 - acquisition.spacing * (count - 1)) / 2 + acquisition.spacing * np.arange(count)
            simulated[profile].append(lines @ profile_matrix(n, centres, acquisition).T)
    for profile in PROFILES:  # in-plane axes too short to give MIN_SAMPLES thick samples say nothing
        simulated[profile] = [s for s in simulated[profile] if s.shape[1] >= MIN_SAMPLES]
    if target.shape[1] < MIN_SAMPLES:
        raise VolumeError(f"{volume.source}: too few slices ({target.shape[1]}) to estimate the slice profile")
    if not simulated["box"]:
        raise VolumeError(f"{volume.source}: no in-plane axis is long enough at {spacing:g} mm to compare with")
    length = min([target.shape[1]] + [s.shape[1] for s in simulated["box"]])
    real = _spectrum(target, length)
    band = slice(1, length // 2)  # no DC; below the Nyquist edge, where both are resolved and not all noise
    for profile, parts in simulated.items():
        model = np.mean([_spectrum(s, length) for s in parts], axis=0)
        # Compare shapes, not levels or slopes: anatomy along the slice axis is not that of the in-plane axes, so
        # a straight line in log power (the content's own fall-off) is fitted out; what remains is the profile's
        # signature (a box's sinc lobes and aliasing against a Gaussian's smooth roll-off).
        f = np.arange(length // 2 + 1)[band] / length
        diff = np.log(real[band]) - np.log(model[band])
        design = np.stack([np.ones_like(f), f], axis=1)
        residual = diff - design @ np.linalg.lstsq(design, diff, rcond=None)[0]
        errors[profile] = round(float(np.mean(residual**2)), 6)
    return errors


def default_profile(volume: Volume) -> str:
    """Without evidence: box for CT (thick slices reconstructed by averaging thin ones), Gaussian for everything
    else (an MR slice profile is smooth, and its thickness is defined as its FWHM)."""
    return "box" if str(volume.meta.get("modality", "")).upper() == "CT" else "gaussian"


def choose_profile(
    volume: Volume, axis: int, spacing: float, thickness: float, choice: str = "auto"
) -> tuple[str, dict]:
    """(profile, evidence): `choice` as given, or for 'auto' the profile `profile_errors` prefers by at least
    MARGIN; where the volume is too small or the errors too close to tell, `default_profile` (the evidence says
    which happened)."""
    if choice != "auto":
        return choice, {"chosen_by": "--profile"}
    fallback = default_profile(volume)
    try:
        errors = profile_errors(volume, axis, spacing, thickness)
    except ValueError as exc:
        return fallback, {"chosen_by": "modality default", "reason": str(exc).split(": ", 1)[-1]}
    best, other = sorted(errors, key=errors.__getitem__)
    if errors[other] < MARGIN * errors[best]:
        return fallback, {
            "chosen_by": "modality default",
            "reason": "the spectra do not tell the profiles apart",
            "log_spectrum_errors": errors,
        }
    return best, {"chosen_by": "spectrum", "log_spectrum_errors": errors}
