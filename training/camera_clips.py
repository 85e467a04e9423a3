"""Short HR clips made from still photos by synthetic camera motion, so that a codec's inter-frame prediction meets
motion as it does on cameras: a pan, a zoom, a small rotation, or a still camera watching a moving object.

Pans and moving objects go by whole HR pixels per frame (a quarter LR pixel at x4, so the LR motion is sub-pixel yet
the HR targets stay sharp); zooms and rotations resample the photo with bicubic interpolation.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

MOTIONS = ("pan", "zoom", "rotate", "object")


def _warp(source: np.ndarray, centres: np.ndarray, scales: np.ndarray, angles: np.ndarray, size: int) -> np.ndarray:
    """Frames (T, size, size, 3) uint8 sampled from `source` around each centre (x, y), zoomed and rotated."""
    h, w = source.shape[:2]
    coords = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    gy, gx = torch.meshgrid(coords, coords, indexing="ij")
    grids = []
    for (cx, cy), s, a in zip(centres, scales, angles):
        cos, sin = math.cos(a) * s, math.sin(a) * s
        x = cx + cos * gx - sin * gy
        y = cy + sin * gx + cos * gy
        grids.append(torch.stack([(2 * x + 1) / w - 1, (2 * y + 1) / h - 1], dim=-1))
    grid = torch.stack(grids).float()
    image = torch.from_numpy(source).permute(2, 0, 1)[None].float().expand(len(grids), -1, -1, -1)
    out = F.grid_sample(image, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _pan(image: np.ndarray, rng: np.random.Generator, frames: int, size: int, speed: float) -> np.ndarray:
    """A pan by a whole number of HR pixels per frame in a random direction (the clip fits inside the photo)."""
    h, w = image.shape[:2]
    angle = rng.uniform(0, 2 * math.pi)
    step = np.round(rng.uniform(0, speed) * np.array([math.cos(angle), math.sin(angle)])).astype(int)
    span = np.abs(step) * (frames - 1)
    span = np.minimum(span, [w - size, h - size])
    step = np.sign(step) * (span // max(frames - 1, 1))
    x0 = rng.integers(w - size - abs(step[0]) * (frames - 1) + 1) + max(0, -step[0]) * (frames - 1)
    y0 = rng.integers(h - size - abs(step[1]) * (frames - 1) + 1) + max(0, -step[1]) * (frames - 1)
    return np.stack(
        [
            image[y0 + t * step[1] : y0 + t * step[1] + size, x0 + t * step[0] : x0 + t * step[0] + size]
            for t in range(frames)
        ]
    )


def _object(image: np.ndarray, rng: np.random.Generator, frames: int, size: int, speed: float) -> np.ndarray:
    """A still background with a patch of another part of the photo moving across it (a pedestrian, a car)."""
    h, w = image.shape[:2]
    top, left = rng.integers(h - size + 1), rng.integers(w - size + 1)
    background = image[top : top + size, left : left + size]
    side = int(rng.integers(size // 4, size // 2 + 1))
    oy, ox = rng.integers(h - side + 1), rng.integers(w - side + 1)
    patch = image[oy : oy + side, ox : ox + side]
    angle = rng.uniform(0, 2 * math.pi)
    step = np.round(rng.uniform(1, max(speed, 1)) * np.array([math.cos(angle), math.sin(angle)])).astype(int)
    start = rng.integers(0, size - side + 1, size=2)
    clip = np.repeat(background[None], frames, axis=0)
    for t in range(frames):
        x, y = np.clip(start + t * step, 0, size - side)
        clip[t, y : y + side, x : x + side] = patch
    return clip


def _zoom_rotate(
    image: np.ndarray, rng: np.random.Generator, frames: int, size: int, zoom: float, degrees: float, rotate: bool
) -> np.ndarray:
    """A zoom in or out by up to `zoom` per frame, or a rotation by up to `degrees` per frame, about the centre."""
    h, w = image.shape[:2]
    t = np.arange(frames)
    rate = rng.uniform(-zoom, zoom) if not rotate else 0.0
    scales = (1 + rate) ** t
    turn = math.radians(rng.uniform(-degrees, degrees)) if rotate else 0.0
    angles = turn * t
    reach = size * float(scales.max()) * (math.sqrt(2) if rotate else 1.0) / 2 + 2
    cx = round(rng.uniform(reach, max(reach, w - reach)))  # whole pixels: frame 0 is the photo itself
    cy = round(rng.uniform(reach, max(reach, h - reach)))
    centres = np.stack([np.full(frames, cx), np.full(frames, cy)], axis=1) - 0.5
    return _warp(image, centres, scales, angles, size)


def flip_and_turn(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A (T, H, W, 3) clip mirrored left-right with probability 1/2, then turned by a random multiple of 90 degrees
    (the same for every frame)."""
    if rng.random() < 0.5:
        clip = clip[:, :, ::-1]
    return np.ascontiguousarray(np.rot90(clip, k=int(rng.integers(4)), axes=(1, 2)))


def camera_clip(
    image: np.ndarray,
    rng: np.random.Generator,
    frames: int,
    size: int,
    motion: str,
    speed: float = 6.0,
    zoom: float = 0.02,
    degrees: float = 1.0,
) -> np.ndarray:
    """(frames, size, size, 3) uint8 HR clip of `image` (H, W, 3) under `motion` (one of MOTIONS); `speed` in HR
    pixels per frame, `zoom` the largest relative change of scale per frame, `degrees` the largest turn per frame."""
    if min(image.shape[:2]) < size:
        raise ValueError(f"image {image.shape[1]}x{image.shape[0]} is smaller than the {size}px clip")
    if motion == "pan":
        return _pan(image, rng, frames, size, speed)
    if motion == "object":
        return _object(image, rng, frames, size, speed)
    if motion in ("zoom", "rotate"):
        return _zoom_rotate(image, rng, frames, size, zoom, degrees, motion == "rotate")
    raise ValueError(f"unknown camera motion {motion!r}: use one of {', '.join(MOTIONS)}")
