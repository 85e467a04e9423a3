"""Per-camera adaptation: fine-tune a camera model on one camera's own footage (`srstream tune`).

The footage is what the camera delivers (compressed, at its own resolution). It serves as HR, and the camera
degradation the model was trained with (blur, resize, noise, the codec) makes its LR, so the model learns that
camera's scenes and encoder one scale down: the zero-shot idea of ZSSR (Shocher et al. 2018), as srmed tunes a
model on each volume's own slices. Clips are T consecutive frames cropped at one place, so they keep the footage's
real motion for the codec's inter-frame coding. No frame of any reference is ever seen.
"""

from __future__ import annotations

import copy
import time
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from training.camera_clips import flip_and_turn
from training.camera_degrade import CameraSettings, degrade_clip_with_qp
from training.compression import qp_plane
from training.hardware import cpu_has_native_bf16
from training.video_frames import video_clip

MIN_LR_PATCH = 16  # LR pixels a side: smaller clips teach little and codecs pad them


@dataclass(frozen=True)
class TuneSettings:
    """How long and how hard to tune: wall-clock seconds (or a step cap), clips a step, HR patch, learning rate."""

    seconds: float = 300.0
    max_steps: int | None = None
    batch: int = 4
    patch: int = 128
    lr: float = 2e-5
    seed: int = 0


def footage_clip(footage: np.ndarray, rng: np.random.Generator, frames: int, patch: int) -> np.ndarray:
    """`frames` consecutive frames of `footage` (N, H, W, 3) uint8, cropped at one random place, flipped and
    turned at random: (T, patch, patch, 3)."""
    return flip_and_turn(video_clip(footage, rng, frames, patch), rng)


def fitted_patch(footage: np.ndarray, source: str, frames: int, patch: int, scale: int) -> int:
    """`patch`, shrunk to what the frames hold and to a multiple of 2 x `scale` (even LR sides for the codec's
    yuv420p); a one-line ValueError naming `source` when the footage cannot give a single training clip."""
    if footage.ndim != 4 or footage.shape[-1] != 3:
        raise ValueError(f"{source}: footage must be RGB frames (N, H, W, 3), not {footage.shape}")
    if len(footage) < frames:
        raise ValueError(f"{source}: {len(footage)} frames; tuning needs at least {frames}")
    patch = min(patch, *footage.shape[1:3])
    patch -= patch % (2 * scale)
    if patch < MIN_LR_PATCH * scale:
        raise ValueError(
            f"{source}: frames of {footage.shape[2]}x{footage.shape[1]} are too small to tune on "
            f"(at least {MIN_LR_PATCH * scale} px a side)"
        )
    return patch


def _pairs(
    footage: np.ndarray,
    rng: np.random.Generator,
    camera: CameraSettings,
    scale: int,
    batch: int,
    patch: int,
    qp_input: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of (HR, LR) frames in [0, 1], (B x T, 3, P, P) and (B x T, 3, P/scale, P/scale); with `qp_input`,
    each LR frame with a fourth channel: its QP map from the decoder (training.compression), as the model sees it
    at work."""
    hrs, lrs, planes = [], [], []
    for _ in range(batch):
        hr = footage_clip(footage, rng, camera.frames, patch)
        lr, qp, _ = degrade_clip_with_qp(hr, rng, camera, scale)
        hrs.append(hr)
        lrs.append(lr)
        planes += [qp_plane(q, *lr.shape[1:3]) for q in qp]
    as_float = lambda c: torch.from_numpy(np.concatenate(c)).permute(0, 3, 1, 2).float().div_(255.0)  # noqa: E731
    low = as_float(lrs)
    if qp_input:
        low = torch.cat([low, torch.from_numpy(np.stack(planes))[:, None]], dim=1)
    return as_float(hrs), low


def fine_tune(
    module: nn.Module,
    footage: np.ndarray,
    camera: CameraSettings,
    scale: int,
    settings: TuneSettings = TuneSettings(),
    source: str = "footage",
    progress: bool = True,
    qp_input: bool = False,
) -> tuple[nn.Module, dict]:
    """A copy of `module` (a single-frame x`scale` model; `qp_input`: one that takes the QP plane) tuned on
    `footage` (N, H, W, 3) uint8, and a log of the run. bf16 autocast on CPUs with native bf16; stops after
    `settings.seconds` (or `max_steps`)."""
    patch = fitted_patch(footage, source, camera.frames, settings.patch, scale)
    tuned = copy.deepcopy(module).float().train()
    optimiser = torch.optim.Adam(tuned.parameters(), lr=settings.lr)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if cpu_has_native_bf16() else nullcontext()
    rng = np.random.default_rng(settings.seed)
    steps, losses, started = 0, [], time.perf_counter()
    bar = tqdm(total=round(settings.seconds), desc="tuning", unit="s", disable=not progress)
    while time.perf_counter() - started < settings.seconds and steps < (settings.max_steps or 1 << 62):
        hr, lr = _pairs(footage, rng, camera, scale, settings.batch, patch, qp_input)
        with autocast:
            loss = F.l1_loss(tuned(lr).float(), hr)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        steps += 1
        bar.update(min(round(time.perf_counter() - started), bar.total) - bar.n)
        bar.set_postfix(step=steps, l1=f"{np.mean(losses[-20:]):.4f}")
    bar.close()
    log = {
        "steps": steps,
        "clips": steps * settings.batch,
        "frames_a_clip": camera.frames,
        "patch": patch,
        "footage_frames": len(footage),
        "footage_size": f"{footage.shape[2]}x{footage.shape[1]}",
        "seconds": round(time.perf_counter() - started, 1),
        "lr": settings.lr,
        "first_l1": round(float(np.mean(losses[:20])), 5) if losses else None,
        "last_l1": round(float(np.mean(losses[-20:])), 5) if losses else None,
    }
    return tuned.eval(), log


def camera_settings(recorded: dict | None) -> CameraSettings:
    """The camera degradation a model was trained with (its card's record), or the default one."""
    return CameraSettings.from_dict(recorded) if recorded else CameraSettings()
