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
from srstream.backends.precision import PrecisionError
from srstream.backends.tensorrt_build import TensorRTError
from srstream.models import ModelSpec, load_model
from srstream.memory import available_memory
from srstream.resample import resize
from srstream.tiling import run_tiled

log = logging.getLogger("srstream")
BACKENDS = backends.NAMES
MIN_TILE = 32
MEMORY_SHARE = 0.5  # of the free device memory (or available RAM) that one engine call may fill with activations
ACTIVATION_SLACK = 3  # live tensors at the widest layer: its input, its output and a temporary


class EngineError(RuntimeError):
    """The engine cannot run as asked (backend missing, out of memory at the smallest tile, bad frames)."""


class Upscaler:
    """Upscale batches of frames with one model on one backend.

    `model` is a shipped name, a weights path or a ModelSpec; `precision` is auto, fp32, bf16 or fp16 (auto: fp16
    on CUDA, bf16 on CPUs that have it natively, else fp32); `tile` is the LR tile size in pixels (0 = only when a
    frame's activations would not fit `memory_budget` bytes, by default half the free memory; None = never tile);
    `batch_size` frames go through the network at once; `tta` averages the outputs over the flips and transposes of
    the input (self-ensemble: 8 passes, 4 for a through-plane model, for a little fidelity).
    """

    def __init__(self, model: str | Path | ModelSpec = "srresnet-x4", backend: str = "auto",
                 tile: int | None = 0, batch_size: int = 4, tta: bool = False, precision: str = "auto",
                 memory_budget: int | None = None, **backend_options) -> None:
        self.spec = model if isinstance(model, ModelSpec) else load_model(model)
        try:
            self.backend_name = backends.resolve(backend, precision)
            self.backend: Backend = backends.create(self.backend_name, self.spec, precision=precision,
                                                    **backend_options)
        except (BackendUnavailable, PrecisionError, TensorRTError) as exc:
            raise EngineError(str(exc)) from None
        self.tile = tile
        self.batch_size = max(1, batch_size)
        self.tta = tta
        self.memory_budget = memory_budget
        log.info("srstream: model %s (x%d) on %s", self.spec.name, self.spec.scale, self.label)

    @property
    def precision(self) -> str:
        """What the backend computes in: fp32, bf16 or fp16."""
        return self.backend.precision

    @property
    def device(self) -> torch.device:
        """Where the backend computes and its outputs are."""
        return self.backend.device

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A host tensor on the engine's device: pinned and asynchronous on CUDA (ordered on the current stream)."""
        if x.device == self.device:
            return x
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device)

    def prepare(self, height: int, width: int, batch: int | None = None) -> None:
        """Get ready for batches of `batch` frames of height x width (capture their CUDA graph now), so that the
        first frames of a video do not wait; nothing to do on other backends."""
        n = batch or self.batch_size
        if hasattr(self.backend, "prepare") and self._tile_size(height, width, n) == 0 and not self.tta and \
                self.spec.multiple_of == 1:
            self.backend.prepare((n, self.spec.channels, height, width))

    @property
    def label(self) -> str:
        """Backend and precision as logs and reports show them, e.g. 'cpu bf16'."""
        return f"{self.backend_name} {self.precision}"

    @property
    def scale(self) -> int:
        return self.spec.scale

    def activation_bytes(self) -> int:
        """Bytes of activations per input pixel of one frame at the network's widest point: its width (64 where the
        card does not say) at the output's resolution, in the backend's number format, a few tensors alive."""
        width = self.spec.descriptor.width
        itemsize = torch.empty(0, dtype=getattr(self.backend, "dtype", torch.float32)).element_size()
        return width * self.scale ** 2 * itemsize * ACTIVATION_SLACK

    def _budget(self) -> int:
        if self.memory_budget is not None:
            return self.memory_budget
        if self.backend.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.backend.device)
        else:
            free = available_memory()
        return int(free * MEMORY_SHARE)

    def _tile_size(self, h: int, w: int, n: int = 1) -> int:
        """0 when n frames of h x w fit the memory budget whole, else the side of the square LR tiles that do."""
        if self.tile is None:
            return 0
        if self.tile > 0:
            return self.tile
        per_pixel = self.activation_bytes() * n
        budget = self._budget()
        if h * w * per_pixel <= budget:
            return 0
        return max(MIN_TILE, int((budget / per_pixel) ** 0.5))

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
        tile = self._tile_size(*x.shape[-2:], x.shape[0])
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

    def upscale_tensor(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        """(N, C, H, W) float in [0, 1] -> (N, C, rH, rW) float32 in [0, 1] on the backend's device; with `size`
        (width, height), the model's output is resampled to it there (Lanczos, antialiased)."""
        if x.ndim != 4:
            raise EngineError(f"expected (N, C, H, W) frames, got shape {tuple(x.shape)}")
        c, want = x.shape[1], self.spec.channels
        if c == 1 and want == 3:  # grey through an RGB model: run it as RGB, return luma
            return self.upscale_tensor(x.expand(-1, 3, -1, -1), size).mean(dim=1, keepdim=True)
        if c != want:
            raise EngineError(f"model {self.spec.name} takes {want}-channel frames, got {c} channels")
        if not self.tta:
            y = self._upscale_once(x)
        else:
            views = tta_views(transpose=self.spec.descriptor.transposable)
            y = None
            for flips, transposed in views:
                out = _unview(self._upscale_once(_view(x, flips, transposed)), flips, transposed)
                y = out if y is None else y.add_(out)
            y = y.div_(len(views))
        if size is not None and tuple(size) != (y.shape[-1], y.shape[-2]):
            y = resize(y, size)
        return y.clamp_(0, 1)

    def _upscale_once(self, x: torch.Tensor) -> torch.Tensor:
        chunks = [x[i:i + self.batch_size] for i in range(0, x.shape[0], self.batch_size)]
        untiled = self._tile_size(*x.shape[-2:], min(x.shape[0], self.batch_size)) == 0
        if hasattr(self.backend, "upload") and untiled and self.spec.multiple_of == 1:
            try:
                return torch.cat(list(self._pipelined(chunks)))
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()  # fall back to the tiling path, which shrinks tiles until it fits
        return torch.cat([self._run(c) for c in chunks])

    def _pipelined(self, chunks: list[torch.Tensor]):
        # Upload chunk i+1 on the copy stream while chunk i computes (no-op on CPU).
        pending = self.backend.upload(chunks[0])
        for i in range(len(chunks)):
            current = pending
            if i + 1 < len(chunks):
                pending = self.backend.upload(chunks[i + 1])
            yield self.backend.run(*current)

    def upscale(self, frames: np.ndarray | torch.Tensor, size: tuple[int, int] | None = None
                ) -> np.ndarray | torch.Tensor:
        """Upscale frames and return the same kind: numpy (H, W[, C]) or (N, H, W, C), or torch (N, C, H, W);
        uint8, uint16 or float in [0, 1]. `size` (width, height) resamples the output to that size."""
        if isinstance(frames, torch.Tensor):
            return _from_float(self.upscale_tensor(_to_float(frames), size), frames.dtype).to(frames.device)
        array = np.asarray(frames)
        if array.ndim not in (2, 3, 4) or (array.ndim > 2 and array.shape[-1] not in (1, 3, 4)):
            raise EngineError(f"expected an image (H, W[, C]) or frames (N, H, W, C), got shape {array.shape}")
        single = array.ndim < 4
        batch = array.reshape((1, *array.shape[:2], -1)) if single else array
        alpha = None
        if batch.shape[-1] == 4:  # alpha is upscaled by bicubic, not by the model
            batch, alpha = batch[..., :3], batch[..., 3:]
        # Integers cross to the device as they are (1 byte a sample for 8-bit) and become floats there.
        y = self.upscale_tensor(_to_float(self.to_device(_tensor(batch)).permute(0, 3, 1, 2)), size)
        if alpha is not None:
            a = _to_float(self.to_device(_tensor(alpha)).permute(0, 3, 1, 2))
            a = torch.nn.functional.interpolate(a, size=y.shape[-2:], mode="bicubic", antialias=True).clamp(0, 1)
            y = torch.cat([y, a.to(y.device)], dim=1)
        out = _from_float(y, torch.from_numpy(np.empty(0, batch.dtype)).dtype).permute(0, 2, 3, 1).cpu().numpy()
        if array.ndim == 2:
            out = out[..., 0]
        return out[0] if single else out


def _tensor(array: np.ndarray) -> torch.Tensor:
    # torch cannot honour a read-only array (an image decoder's buffer, say): copy it rather than share it.
    array = np.ascontiguousarray(array)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


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
