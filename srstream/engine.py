"""The one inference engine: `Upscaler` picks a backend, converts frames, tiles and batches them.

Video, medical and the demo all upscale through `Upscaler.upscale`; nothing else runs a generator.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from srstream import backends
from srstream.backends import Backend, BackendUnavailable
from srstream.models import ModelSpec, load_model
from srstream.tiling import run_tiled
from training.weights import slab_thickness

log = logging.getLogger("srstream")
BACKENDS = backends.NAMES
CPU_TILE = 256  # LR pixels: keeps CPU memory modest on big frames at no cost in speed
MIN_TILE = 32


class EngineError(RuntimeError):
    """The engine cannot run as asked (backend missing, out of memory at the smallest tile, bad frames)."""


class Upscaler:
    """Upscale batches of frames with one model on one backend.

    `model` is a shipped name, a weights path or a ModelSpec; `tile` is the LR tile size in pixels (0 = automatic,
    None = never tile); `batch_size` frames go through the network at once; `tta` averages the outputs over the
    flips and transposes of the input (self-ensemble: 8 passes, 4 for a through-plane model, for a little fidelity).
    """

    def __init__(self, model: str | Path | ModelSpec = "srresnet-x4", backend: str = "auto",
                 tile: int | None = 0, batch_size: int = 4, tta: bool = False, **backend_options) -> None:
        self.spec = model if isinstance(model, ModelSpec) else load_model(model)
        try:
            self.backend_name = backends.resolve(backend)
        except BackendUnavailable as exc:
            raise EngineError(str(exc)) from None
        self.backend: Backend = backends.create(self.backend_name, self.spec, **backend_options)
        self.tile = tile
        self.batch_size = max(1, batch_size)
        self.tta = tta
        log.info("srstream: model %s (x%d) on backend %s", self.spec.name, self.spec.scale, self.backend_name)

    @property
    def scale(self) -> int:
        return self.spec.scale

    def _tile_size(self, h: int, w: int) -> int:
        if self.tile is None:
            return 0
        if self.tile > 0:
            return self.tile
        if self.backend.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.backend.device)
            # fp16 activations: about 64 channels x 2 bytes x scale^2 per input pixel at the widest layer, x3 slack.
            per_pixel = 64 * 2 * self.scale**2 * 3 * self.batch_size
            side = int((free * 0.5 / per_pixel) ** 0.5)
            return 0 if side >= max(h, w) else max(MIN_TILE, side)
        return 0 if max(h, w) <= CPU_TILE else CPU_TILE

    def _net(self, x: torch.Tensor) -> torch.Tensor:
        # Some third-party networks need sides that are multiples of m: reflect-pad, run, crop.
        m = self.spec.multiple_of
        h, w = x.shape[-2:]
        ph, pw = -h % m, -w % m
        if ph or pw:
            x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        y = self.backend(x)
        return y[..., : h * self.scale, : w * self.scale] if (ph or pw) else y

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        tile = self._tile_size(*x.shape[-2:])
        while True:
            try:
                return run_tiled(x, self._net, self.scale, tile, self.spec.receptive_radius)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                side = tile or max(x.shape[-2:])
                if side // 2 < MIN_TILE:
                    raise EngineError(f"out of GPU memory even with {side}px tiles and batch {x.shape[0]}; "
                                      "lower --batch or use --backend cpu") from None
                tile = side // 2
                log.warning("srstream: out of GPU memory, retrying with %dpx tiles", tile)

    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) float in [0, 1] -> (N, C, rH, rW) float32 in [0, 1] on the backend's device."""
        if x.ndim != 4:
            raise EngineError(f"expected (N, C, H, W) frames, got shape {tuple(x.shape)}")
        c, want = x.shape[1], self.spec.channels
        if c == 1 and want == 3:  # grey through an RGB model: run it as RGB, return luma
            return self.upscale_tensor(x.expand(-1, 3, -1, -1)).mean(dim=1, keepdim=True)
        if c != want:
            raise EngineError(f"model {self.spec.name} takes {want}-channel frames, got {c} channels")
        if not self.tta:
            return self._upscale_once(x)
        views = tta_views(transpose=not slab_thickness({**self.spec.card, "scale": self.spec.scale}))
        total = None
        for flips, transposed in views:
            y = _unview(self._upscale_once(_view(x, flips, transposed)), flips, transposed)
            total = y if total is None else total.add_(y)
        return total.div_(len(views)).clamp_(0, 1)

    def _upscale_once(self, x: torch.Tensor) -> torch.Tensor:
        chunks = [x[i:i + self.batch_size] for i in range(0, x.shape[0], self.batch_size)]
        if hasattr(self.backend, "upload") and self._tile_size(*x.shape[-2:]) == 0 and self.spec.multiple_of == 1:
            try:
                return torch.cat(list(self._pipelined(chunks))).clamp_(0, 1)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()  # fall back to the tiling path, which shrinks tiles until it fits
        return torch.cat([self._run(c) for c in chunks]).clamp_(0, 1)

    def _pipelined(self, chunks: list[torch.Tensor]):
        # Upload chunk i+1 on the copy stream while chunk i computes (no-op on CPU).
        pending = self.backend.upload(chunks[0])
        for i in range(len(chunks)):
            current = pending
            if i + 1 < len(chunks):
                pending = self.backend.upload(chunks[i + 1])
            yield self.backend.run(*current)

    def upscale(self, frames: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Upscale frames and return the same kind: numpy (H, W[, C]) or (N, H, W, C), or torch (N, C, H, W);
        uint8, uint16 or float in [0, 1]."""
        if isinstance(frames, torch.Tensor):
            return _from_float(self.upscale_tensor(_to_float(frames)), frames.dtype).to(frames.device)
        array = np.asarray(frames)
        if array.ndim not in (2, 3, 4) or (array.ndim > 2 and array.shape[-1] not in (1, 3, 4)):
            raise EngineError(f"expected an image (H, W[, C]) or frames (N, H, W, C), got shape {array.shape}")
        single = array.ndim < 4
        batch = array.reshape((1, *array.shape[:2], -1)) if single else array
        alpha = None
        if batch.shape[-1] == 4:  # alpha is upscaled by bicubic, not by the model
            batch, alpha = batch[..., :3], batch[..., 3:]
        x = _to_float(torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2))
        y = self.upscale_tensor(x)
        if alpha is not None:
            a = _to_float(torch.from_numpy(np.ascontiguousarray(alpha)).permute(0, 3, 1, 2))
            a = torch.nn.functional.interpolate(a, scale_factor=self.scale, mode="bicubic").clamp(0, 1)
            y = torch.cat([y, a.to(y.device)], dim=1)
        out = _from_float(y, torch.from_numpy(np.empty(0, batch.dtype)).dtype).permute(0, 2, 3, 1).cpu().numpy()
        if array.ndim == 2:
            out = out[..., 0]
        return out[0] if single else out


def tta_views(transpose: bool = True) -> list[tuple[tuple[int, ...], bool]]:
    """The self-ensemble's views as (flipped dims, transposed): the 8 symmetries of the square, or only the 4 flips
    for a model whose degradation has a direction (a through-plane model's slab blur runs along the height)."""
    flips = [(), (-1,), (-2,), (-2, -1)]
    return [(f, t) for t in ((False, True) if transpose else (False,)) for f in flips]


def _view(x: torch.Tensor, flips: tuple[int, ...], transposed: bool) -> torch.Tensor:
    y = torch.flip(x, flips) if flips else x
    return y.transpose(-1, -2).contiguous() if transposed else y


def _unview(y: torch.Tensor, flips: tuple[int, ...], transposed: bool) -> torch.Tensor:
    # The inverse of `_view`: undo the transpose first, then the flips.
    y = y.transpose(-1, -2) if transposed else y
    return torch.flip(y, flips) if flips else y


def _to_float(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.float().div_(255)
    if x.dtype == torch.uint16:
        return x.float().div_(65535)
    if x.dtype == torch.int32 or x.dtype == torch.int16:
        raise EngineError(f"frames of dtype {x.dtype} are not supported: use uint8, uint16 or float")
    return x.float()


def _from_float(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint8:
        return y.mul(255).round_().to(torch.uint8)
    if dtype == torch.uint16:
        return y.mul(65535).round_().to(torch.int32).to(torch.uint16)
    return y.to(dtype)
