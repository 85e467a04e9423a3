"""Self-supervised fine-tuning on the volume itself (the idea of SMORE, Zhao et al.): the in-plane slices are
sharp, so degrade them to the through-plane resolution and teach the 2-D model to undo that, for a bounded time,
before it is applied through-plane. No external data is used.
"""

from __future__ import annotations

import copy
import time
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from medical.intensity import robust_window
from medical.volume import Volume, VolumeError
from srstream.models import ModelSpec
from training.acquisition import Acquisition, acquire
from training.degrade import degrade


def _patch_size(slices: np.ndarray, patch: int, r: int, source: str) -> int:
    """`patch`, shrunk to a multiple of `r` that the slices hold; refused when that leaves too little."""
    if min(slices.shape[1:]) < patch:
        patch = (min(slices.shape[1:]) // r) * r
    if patch < 4 * r:
        raise VolumeError(f"{source}: slices of {slices.shape[1:]} are too small to fine-tune on")
    return patch


def _crops(slices: np.ndarray, informative: list[int], patch: int, batch: int, rng: np.random.Generator) -> np.ndarray:
    """`batch` random patches of informative slices, each turned by a random multiple of 90 degrees."""
    crops = []
    for _ in range(batch):
        s = slices[rng.choice(informative)]
        top = rng.integers(s.shape[0] - patch + 1)
        left = rng.integers(s.shape[1] - patch + 1)
        crops.append(np.rot90(s[top : top + patch, left : left + patch], k=int(rng.integers(4))).copy())
    return np.stack(crops)


def _degraded(
    hr: torch.Tensor, pixels: Acquisition | None, thickness: int, r: int, rng: np.random.Generator
) -> torch.Tensor:
    """The input the model learns from: `hr` through the acquisition (at a random phase), a slab, or bicubic x r."""
    if pixels is not None:
        return acquire(hr, pixels, first=float(rng.uniform(0, pixels.spacing))).clamp(0, 1)
    return degrade(hr, r, "slab") if thickness else degrade(hr, r)


def _log(
    steps: int,
    batch: int,
    device: torch.device,
    started: float,
    patch: int,
    pixels: Acquisition | None,
    losses: list[float],
) -> dict:
    return {
        "steps": steps,
        "patches": steps * batch,
        "device": str(device),
        "seconds": round(time.perf_counter() - started, 1),
        "patch": patch,
        "acquisition_px": None
        if pixels is None
        else {"spacing": round(pixels.spacing, 4), "thickness": round(pixels.thickness, 4), "profile": pixels.profile},
        "first_loss": losses[0] if losses else None,
        "last_loss": float(np.mean(losses[-5:])) if losses else None,
    }


def fine_tune(
    spec: ModelSpec,
    volume: Volume,
    axis: int = 2,
    seconds: float = 60.0,
    patch: int = 48,
    batch: int | None = None,
    lr: float = 5e-5,
    seed: int = 0,
    acquisition: Acquisition | None = None,
    target: float | None = None,
    device: str | torch.device = "cpu",
    max_patches: int | None = None,
) -> tuple[ModelSpec, dict]:
    """A copy of `spec` fine-tuned on `volume`'s slices perpendicular to `axis` (the sharp ones), and a log.

    With `acquisition` (the slice axis's spacing, thickness and profile in mm) and `target` (the spacing asked
    for, mm), a through-plane model learns to undo exactly that acquisition, measured in target-spacing pixels
    (the ratio need not be an integer); without, it learns its own slab thickness (or bicubic x scale).
    Runs on `device` (bf16 autocast on CUDA); stops after `seconds` of training or `max_patches` patches seen
    (ECLARE's budget is about a million), and refuses slices too small for `patch` pixels.
    """
    descriptor = spec.descriptor
    thickness = descriptor.slab_thickness
    pixels = acquisition.scaled(target) if acquisition is not None and target else None
    r = thickness or descriptor.scale  # a through-plane model learns to undo slab blur; an x r model, bicubic x r
    if pixels is not None:
        if descriptor.scale != 1:
            raise VolumeError(f"model {descriptor.name} is not a through-plane model: it cannot learn an acquisition")
        patch = max(patch, int(4 * pixels.spacing) + 8)
        r = 1
    window = robust_window(volume.data, padding=volume.meta.get("padding"))
    slices = np.moveaxis(np.clip(window.forward(volume.data), 0, 1), axis, 0)
    patch = _patch_size(slices, patch, r, volume.source)
    informative = [i for i in range(len(slices)) if slices[i].mean() > 0.02] or list(range(len(slices)))
    device = torch.device(device)
    batch = batch or (64 if device.type == "cuda" else 8)  # a GPU wants big batches; two CPU cores small ones
    module = copy.deepcopy(spec.module).to(device).train()
    optimiser = torch.optim.Adam(module.parameters(), lr=lr)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    rng = np.random.default_rng(seed)
    steps, losses, started = 0, [], time.perf_counter()
    while time.perf_counter() - started < seconds and (max_patches is None or steps * batch < max_patches):
        hr = torch.from_numpy(_crops(slices, informative, patch, batch, rng)[:, None].astype(np.float32))
        if descriptor.channels == 3:
            hr = hr.expand(-1, 3, -1, -1).contiguous()
        hr = hr.to(device)
        lr_img = _degraded(hr, pixels, thickness, r, rng)
        with autocast:
            loss = F.l1_loss(module(lr_img).float(), hr)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if steps % 50 == 0 or device.type == "cpu":  # .item() waits for the GPU: not every step there
            losses.append(loss.item())
        steps += 1
    log = _log(steps, batch, device, started, patch, pixels, losses)
    return spec.tuned(module.cpu().eval(), name=f"{descriptor.name}+self", self_supervised=log), log
