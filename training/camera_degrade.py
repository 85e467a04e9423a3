"""The camera degradation: what a camera and its encoder do to a short clip, drawn at random per clip.

A lighter cousin of Real-ESRGAN's second-order model, aimed at compressed camera footage:

1. blur (isotropic or anisotropic Gaussian, motion, defocus), resize to about the LR size (area, bilinear or
   bicubic, by a random factor), sensor noise (Gaussian or Poisson, luma-only or per colour, new every frame);
2. with `second_order_p`, the same three again, lighter, in random order;
3. resize to exactly the LR size, then JPEG and real codec compression (PyAV, libx264/libx265, one GOP per clip
   with I/P/B frames, CRF and preset drawn from ranges), JPEG before the codec or, less often, after it.

Blur and compression settings are drawn once per clip (one camera, one encoder); noise differs from frame to frame.
Everything is drawn from the numpy Generator passed in, so a seeded sample is reproducible.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from training.camera_clips import MOTIONS
from training.codec import CODECS, PRESETS, Encoding, compress_with_facts
from training.compression import blocks_of

BLURS = ("isotropic", "anisotropic", "motion", "defocus")
RESIZES = ("area", "bilinear", "bicubic")
CONTAINERS = ("matroska", "mp4")


@dataclass(frozen=True)
class CameraSettings:
    """Probabilities and [lo, hi] ranges of the camera degradation (noise sigma in 8-bit levels, blur in HR px)."""

    frames: int = 5
    motions: tuple = MOTIONS
    speed: float = 6.0
    zoom: float = 0.02
    degrees: float = 1.0
    blur_p: float = 0.5
    blurs: tuple = BLURS
    blur_sigma: tuple = (0.2, 2.0)
    motion_length: tuple = (3, 9)
    defocus_radius: tuple = (1.0, 3.0)
    resizes: tuple = RESIZES
    resize_range: tuple = (0.8, 1.25)
    noise_p: float = 0.4
    noise_sigma: tuple = (1.0, 10.0)
    poisson_p: float = 0.4
    poisson_photons: tuple = (200.0, 4000.0)
    grey_noise_p: float = 0.4
    second_order_p: float = 0.3
    jpeg_p: float = 0.2
    jpeg_quality: tuple = (50, 95)
    jpeg_after_codec_p: float = 0.2
    codec_p: float = 0.9
    codecs: tuple = CODECS
    x265_p: float = 0.3
    crf: tuple = (18, 40)
    presets: tuple = ("ultrafast", "veryfast", "fast", "medium")
    bframes: tuple = (0, 3)
    containers: tuple = CONTAINERS
    abr_p: float = 0.0  # of encoded clips, those at an average bitrate (as cameras are set) instead of a CRF
    abr_bpp: tuple = (0.05, 1.0)  # its bits per pixel and frame, log-uniform (256 kbit/s at 320x180, 25 fps: 0.18)
    sharpen_p: float = 0.0  # the camera's ISP sharpening (an unsharp mask at sensor resolution, before the shrink)
    sharpen_amount: tuple = (0.3, 1.0)
    clean_resize: str = ""  # where set, a clip the codec skips (1 - codec_p) is shrunk by this kind: a QP model
    # learns that QP 0 is the benchmark's clean LR (MATLAB-like "bicubic"), so it matches a bicubic model on images

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_p") and not 0 <= value <= 1:
                raise ValueError(f"data.camera.{f.name} = {value}: a probability, 0 to 1")
            if (
                f.type == "tuple"
                and isinstance(f.default, tuple)
                and isinstance(f.default[0], (int, float))
                and (len(value) != 2 or not value[0] <= value[1])
            ):
                raise ValueError(f"data.camera.{f.name} = {value}: give [lo, hi] with lo <= hi")
        _check_names("motions", self.motions, MOTIONS)
        _check_names("blurs", self.blurs, BLURS)
        _check_names("resizes", self.resizes, RESIZES)
        if self.clean_resize:
            _check_names("clean_resize", (self.clean_resize,), RESIZES)
        _check_names("codecs", self.codecs, CODECS)
        _check_names("presets", self.presets, PRESETS)
        _check_names("containers", self.containers, CONTAINERS)
        if self.frames < 2:
            raise ValueError(f"data.camera.frames = {self.frames}: a clip needs at least 2 frames")
        if not 0 <= self.crf[0] <= self.crf[1] <= 51:
            raise ValueError(f"data.camera.crf = {list(self.crf)}: within 0..51")

    @classmethod
    def from_dict(cls, values: dict) -> CameraSettings:
        """Settings from a config table (lists become tuples; unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"data.camera: unknown setting(s) {', '.join(sorted(unknown))}")
        settings: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**settings)

    def to_dict(self) -> dict:
        """The settings as plain JSON/TOML values (tuples as lists), e.g. for a model card."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _check_names(what: str, names: tuple, allowed: tuple) -> None:
    bad = [n for n in names if n not in allowed]
    if not names or bad:
        raise ValueError(f"data.camera.{what}: a non-empty list of {', '.join(allowed)} (got {list(names)})")


# --- blur kernels (2-D, normalised, odd side) -----------------------------------------------------------------------


def gaussian_kernel2d(sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """An anisotropic Gaussian with standard deviations `sigma_x`, `sigma_y` along axes turned by `theta` radians."""
    radius = max(1, math.ceil(3 * max(sigma_x, sigma_y)))
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * x + s * y, -s * x + c * y
    k = np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return k / k.sum()


def motion_kernel(length: float, theta: float) -> np.ndarray:
    """A straight motion blur `length` pixels long at angle `theta` (antialiased line)."""
    radius = max(1, math.ceil(length / 2))
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    c, s = math.cos(theta), math.sin(theta)
    along, across = c * x + s * y, -s * x + c * y
    k = np.clip(1 - np.abs(across), 0, None) * np.clip(length / 2 + 0.5 - np.abs(along), 0, 1)
    return k / k.sum()


def defocus_kernel(radius: float) -> np.ndarray:
    """A disc of `radius` pixels (out-of-focus blur), its edge antialiased."""
    r = math.ceil(radius)
    y, x = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    k = np.clip(radius + 0.5 - np.hypot(x, y), 0, 1)
    return k / k.sum()


def draw_kernel(rng: np.random.Generator, settings: CameraSettings, strength: float = 1.0) -> tuple[np.ndarray, str]:
    """A random blur kernel of one of `settings.blurs` (ranges scaled by `strength`) and its description."""
    kind = settings.blurs[rng.integers(len(settings.blurs))]
    lo, hi = settings.blur_sigma
    hi = lo + (hi - lo) * strength
    if kind == "isotropic":
        sigma = rng.uniform(lo, hi)
        return gaussian_kernel2d(sigma, sigma, 0.0), f"blur iso sigma {sigma:.2f}"
    if kind == "anisotropic":
        sx, sy, theta = rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(0, math.pi)
        return gaussian_kernel2d(sx, sy, theta), f"blur aniso {sx:.2f}x{sy:.2f}"
    if kind == "motion":
        length = rng.uniform(*settings.motion_length) * strength
        return motion_kernel(max(length, 1.0), rng.uniform(0, math.pi)), f"blur motion {length:.1f}px"
    radius = max(rng.uniform(*settings.defocus_radius) * strength, 0.5)
    return defocus_kernel(radius), f"blur defocus r {radius:.2f}"


# --- the steps, on float clips (T, 3, H, W) in [0, 1] ---------------------------------------------------------------


def apply_kernel(clip: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Every frame and channel convolved with `kernel` (reflect padding)."""
    k = torch.from_numpy(kernel).to(clip.dtype)
    pad = k.shape[0] // 2
    pad_h, pad_w = min(pad, clip.shape[-2] - 1), min(pad, clip.shape[-1] - 1)
    x = F.pad(clip, (pad, pad, pad, pad), mode="reflect" if pad <= min(pad_h, pad_w) else "replicate")
    c = clip.shape[1]
    return F.conv2d(x, k[None, None].expand(c, 1, -1, -1), groups=c)


def resize(clip: torch.Tensor, size: tuple[int, int], kind: str) -> torch.Tensor:
    """Every frame resized to (height, width) by area averaging or antialiased bilinear/bicubic."""
    if tuple(clip.shape[-2:]) == tuple(size):
        return clip
    if kind == "area":
        return F.interpolate(clip, size=size, mode="area")
    return F.interpolate(clip, size=size, mode=kind, align_corners=False, antialias=True)


def add_noise(
    clip: torch.Tensor, rng: np.random.Generator, settings: CameraSettings, strength: float = 1.0
) -> tuple[torch.Tensor, str]:
    """Sensor noise, new in every frame: Gaussian or Poisson (shot noise), on luma only or on each colour."""
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 62)))
    grey = rng.random() < settings.grey_noise_p
    shape = (clip.shape[0], 1, *clip.shape[2:]) if grey else clip.shape
    if rng.random() < settings.poisson_p:
        lo, hi = settings.poisson_photons
        photons = float(math.exp(rng.uniform(math.log(lo), math.log(hi)))) / strength
        base = clip.mean(dim=1, keepdim=True) if grey else clip
        noise = torch.poisson(base.clamp(0, 1) * photons, generator=gen) / photons - base
        return (clip + noise).clamp(0, 1), f"poisson {photons:.0f} photons{' grey' if grey else ''}"
    sigma = rng.uniform(*settings.noise_sigma) * strength / 255.0
    noise = torch.randn(shape, generator=gen, dtype=clip.dtype) * sigma
    return (clip + noise).clamp(0, 1), f"gaussian {sigma * 255:.1f}{' grey' if grey else ''}"


def jpeg(clip: np.ndarray, quality: int) -> np.ndarray:
    """Every frame of a uint8 (T, H, W, 3) clip through a JPEG encode/decode at `quality` (4:2:0)."""
    out = []
    for frame in clip:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=int(quality))
        with Image.open(buffer) as im:
            out.append(np.asarray(im.convert("RGB")))
    return np.stack(out)


def draw_encoding(
    rng: np.random.Generator, settings: CameraSettings, size: tuple[int, int] = (0, 0), fps: int = 25
) -> Encoding:
    """A codec (libx265 with `x265_p` when both are allowed), CRF, preset, B frames and container; with `abr_p`,
    an average bitrate for frames of `size` (h, w) instead of the CRF."""
    codecs = settings.codecs
    codec = codecs[0] if len(codecs) == 1 else ("libx265" if rng.random() < settings.x265_p else "libx264")
    crf = int(rng.integers(settings.crf[0], settings.crf[1] + 1))
    preset = settings.presets[rng.integers(len(settings.presets))]
    bframes = int(rng.integers(settings.bframes[0], settings.bframes[1] + 1))
    container = settings.containers[rng.integers(len(settings.containers))]
    kbps = 0
    if settings.abr_p and rng.random() < settings.abr_p:  # drawn only when asked: older runs draw as before
        lo, hi = settings.abr_bpp
        bpp = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        kbps = max(1, round(bpp * size[0] * size[1] * fps / 1000))
    return Encoding(codec, crf, preset, bframes, container, kbps)


def sharpen(clip: torch.Tensor, amount: float, sigma: float = 1.0) -> torch.Tensor:
    """An unsharp mask: the clip plus `amount` times its difference from a Gaussian blur of it (as an ISP does)."""
    blurred = apply_kernel(clip, gaussian_kernel2d(sigma, sigma, 0.0))
    return (clip + amount * (clip - blurred)).clamp(0, 1)


# --- the chain ------------------------------------------------------------------------------------------------------


def _to_float(clip: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(clip)).permute(0, 3, 1, 2).float().div_(255.0)


def _to_uint8(clip: torch.Tensor) -> np.ndarray:
    return clip.mul(255).round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _size_near(lr_size: tuple[int, int], factor_range: tuple, rng: np.random.Generator) -> tuple[int, int]:
    f = rng.uniform(*factor_range)
    return max(2, round(lr_size[0] * f)), max(2, round(lr_size[1] * f))


def _stage(
    clip: torch.Tensor,
    rng: np.random.Generator,
    s: CameraSettings,
    lr_size: tuple[int, int],
    strength: float,
    shuffle: bool,
    log: list[str],
) -> torch.Tensor:
    """One order of blur, resize and noise (each blur/noise with its probability); shuffled when `shuffle`."""
    steps = ["blur", "resize", "noise"]
    if shuffle:
        steps = [steps[i] for i in rng.permutation(3)]
    for step in steps:
        if step == "blur" and rng.random() < s.blur_p:
            kernel, what = draw_kernel(rng, s, strength)
            clip = apply_kernel(clip, kernel)
            log.append(what)
        elif step == "resize":
            kind = s.resizes[rng.integers(len(s.resizes))]
            size = _size_near(lr_size, s.resize_range if strength == 1.0 else (0.9, 1.1), rng)
            clip = resize(clip, size, kind).clamp(0, 1)
            log.append(f"resize {kind} {size[1]}x{size[0]}")
        elif step == "noise" and rng.random() < s.noise_p:
            clip, what = add_noise(clip, rng, s, strength)
            log.append(what)
    return clip


def _compress(
    clip: np.ndarray, rng: np.random.Generator, s: CameraSettings, log: list[str], coded: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """JPEG (with `jpeg_p`) and the codec (with `codec_p`), JPEG usually first; and each frame's QP map as the
    decoder gave it (zeros where no codec ran, or the codec exports none)."""
    quality = int(rng.integers(s.jpeg_quality[0], s.jpeg_quality[1] + 1)) if rng.random() < s.jpeg_p else 0
    if coded is None:
        coded = rng.random() < s.codec_p
    encoding = draw_encoding(rng, s, clip.shape[1:3]) if coded else None
    jpeg_last = rng.random() < s.jpeg_after_codec_p
    if quality and not jpeg_last:
        clip = jpeg(clip, quality)
        log.append(f"jpeg q{quality}")
    t, h, w = clip.shape[:3]
    qp = np.zeros((t, *blocks_of(h, w)), np.float32)
    if encoding is not None:
        clip, facts = compress_with_facts(clip, encoding)
        qp = np.stack([f.qp if f is not None else q for f, q in zip(facts, qp)])
        rate = f"{encoding.kbps} kbit/s" if encoding.kbps else f"crf {encoding.crf}"
        log.append(f"{encoding.codec} {rate} {encoding.preset} bf {encoding.bframes} {encoding.container}")
    if quality and jpeg_last:
        clip = jpeg(clip, quality)
        log.append(f"jpeg q{quality}")
    return clip, qp


def degrade_clip(
    hr: np.ndarray, rng: np.random.Generator, settings: CameraSettings, scale: int
) -> tuple[np.ndarray, list[str]]:
    """The LR clip (T, H/scale, W/scale, 3) uint8 of an HR clip (T, H, W, 3) uint8, and what was done to it."""
    lr, _, log = degrade_clip_with_qp(hr, rng, settings, scale)
    return lr, log


def degrade_clip_with_qp(
    hr: np.ndarray, rng: np.random.Generator, settings: CameraSettings, scale: int
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`degrade_clip`, with each LR frame's QP map (T, h/16, w/16) on H.264's scale as the decoder gave it."""
    _, h, w = hr.shape[:3]
    if h % scale or w % scale or (h // scale) % 2 or (w // scale) % 2:
        raise ValueError(f"clip {w}x{h}: sides must be multiples of {2 * scale} (even LR sides for yuv420p)")
    lr_size = (h // scale, w // scale)
    log: list[str] = []
    coded = None
    if settings.clean_resize:  # decided before any shrink, and only when asked: older runs draw as before
        coded = rng.random() < settings.codec_p
        if not coded:
            settings = replace(settings, resizes=(settings.clean_resize,))
    clip = _to_float(hr)
    if settings.sharpen_p and rng.random() < settings.sharpen_p:  # drawn only when asked, as abr_p
        amount = float(rng.uniform(*settings.sharpen_amount))
        clip = sharpen(clip, amount)
        log.append(f"sharpen {amount:.2f}")
    clip = _stage(clip, rng, settings, lr_size, 1.0, False, log)
    if rng.random() < settings.second_order_p:
        clip = _stage(clip, rng, settings, lr_size, 0.3, True, log)  # at LR scale: lighter
    kind = settings.resizes[rng.integers(len(settings.resizes))]
    clip = resize(clip, lr_size, kind)
    log.append(f"resize {kind} {lr_size[1]}x{lr_size[0]}")
    lr, qp = _compress(_to_uint8(clip), rng, settings, log, coded)
    return lr, qp, log
