"""The one inference engine: `Upscaler` composes the steps a batch of frames goes through.

    frames in (frame_format) -> channels (frame_format) -> the codec's QP plane beside them, for a model that takes
    it (training.compression: the decoder's, else a blind estimate) -> a recurrent model's state packed beside them
    (training.architectures.recurrent) -> self-ensemble views (tta) -> batches (backend_call)
    -> tiles sized to the memory budget, shrunk on OOM (tile_budget, tiling) -> multiple-of padding (padding)
    -> the backend (backends: a registry, one module per backend) -> output size (resample) -> frames out

Each step is its own module and knows nothing of the others; this file only wires them. Video, medical and the
demo all run models through an `Upscaler` (`upscale`; video's scheduler `upscale_tensor`, and `step` for a
recurrent model); only fine-tuning (srmed's per-volume step, `srstream tune`) runs a network itself, to train it.
The engine holds no state: a recurrent
model's state goes in and comes out of `Upscaler.step`, and the caller (a video Stream) keeps it.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import cast, overload

import numpy as np
import torch

from srstream import backends
from srstream.backend_call import run_batches, to_device
from srstream.backends import (
    PREPARES_GRAPHS,
    Backend,
    BackendUnavailable,
    PreparingBackend,
)
from srstream.backends.precision import PrecisionError
from srstream.backends.tensorrt_build import TensorRTError
from srstream.errors import EngineError
from srstream.frame_format import (
    NumpyFrames,
    fit_channels,
    from_float,
    to_float,
    to_grey,
)
from srstream.models import ModelSpec, load_model
from srstream.padding import run_padded
from srstream.resample import resize_to
from srstream.tile_budget import MIN_TILE, TileBudget, run_shrinking
from srstream.tta import self_ensemble, tta_views
from training.architectures.recurrent import pack_state, unpack_state
from training.compression import ASSUMED, Compression, estimated

__all__ = ["BACKENDS", "MIN_TILE", "EngineError", "Upscaler", "tta_views"]

log = logging.getLogger("srstream")
BATCH = 4  # frames per network call by default: enough to fill a CPU or a small GPU
BACKENDS = backends.NAMES
ACTIVATION_SLACK = 3  # live tensors at the widest layer: its input, its output and a temporary


def open_backend(name: str, spec: ModelSpec, precision: str, **options) -> tuple[str, Backend]:
    """The resolved name and a running backend `name` for `spec`, or an EngineError saying why not."""
    try:
        resolved = backends.resolve(name, precision)
        return resolved, backends.create(resolved, spec, precision=precision, **options)
    except (BackendUnavailable, PrecisionError, TensorRTError) as exc:
        raise EngineError(str(exc)) from None


def _tile_setting(name: str, doc: str) -> property:
    # Settable on the Upscaler as before (callers change a budget after construction); held by its TileBudget.
    return property(
        lambda self: getattr(self.tiles, name), lambda self, value: setattr(self.tiles, name, value), doc=doc
    )


class Upscaler:
    """Upscale batches of frames with one model on one backend.

    `model` is a shipped name, a weights path or a ModelSpec; `precision` is auto, fp32, bf16 or fp16 (auto: fp16
    on CUDA, bf16 on CPUs that have it natively, else fp32); `tile` is the LR tile size in pixels (0 = only when a
    frame's activations would not fit `memory_budget` bytes, by default half the free memory; None = never tile);
    `batch_size` frames go through the network at once; `tta` averages the outputs over the flips and transposes of
    the input (self-ensemble: 8 passes, 4 for a through-plane model, for a little fidelity).
    """

    def __init__(
        self,
        model: str | Path | ModelSpec = "srresnet-x4",
        backend: str = "auto",
        tile: int | None = 0,
        batch_size: int = BATCH,
        tta: bool = False,
        precision: str = "auto",
        memory_budget: int | None = None,
        **backend_options,
    ) -> None:
        self.spec = model if isinstance(model, ModelSpec) else load_model(model)
        self.backend_name, self.backend = open_backend(backend, self.spec, precision, **backend_options)
        self.tiles = TileBudget(tile, memory_budget, self.activation_bytes(), self.device)
        self.batch_size = max(1, batch_size)
        if tta and self.spec.recurrent:  # flipped views would each need a past of their own
            raise EngineError(f"{self.spec.name}: --tta does not apply to a recurrent model")
        self.tta = tta
        self._noted_no_past = self._noted_estimate = False
        log.info("srstream: model %s (x%d) on %s", self.spec.name, self.spec.scale, self.label)

    # What it runs and where.

    @property
    def precision(self) -> str:
        """What the backend computes in: fp32, bf16 or fp16."""
        return self.backend.precision

    @property
    def device(self) -> torch.device:
        """Where the backend computes and its outputs are."""
        return self.backend.device

    @property
    def label(self) -> str:
        """Backend and precision as logs and reports show them, e.g. 'cpu bf16'."""
        return f"{self.backend_name} {self.precision}"

    @property
    def scale(self) -> int:
        """The model's upscaling factor."""
        return self.spec.scale

    tile = _tile_setting("tile", "The LR tile side: 0 = by the memory budget, None = never tile.")
    memory_budget = _tile_setting(
        "memory_budget", "Bytes of activations one call may hold (None: a share of the free memory)."
    )

    def activation_bytes(self) -> int:
        """Bytes of activations per input pixel of one frame at the network's widest point: its width (64 where the
        card does not say) at the output's resolution, in the backend's number format, a few tensors alive."""
        itemsize = torch.empty(0, dtype=self.backend.dtype).element_size()
        return self.spec.descriptor.width * self.scale**2 * itemsize * ACTIVATION_SLACK

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        """A host tensor on the engine's device: pinned and asynchronous on CUDA (ordered on the current stream)."""
        return to_device(x, self.device)

    def prepare(self, height: int, width: int, batch: int | None = None) -> None:
        """Get ready for batches of `batch` frames of height x width (capture their CUDA graph now), so that the
        first frames of a video do not wait; nothing to do on other backends."""
        n = batch or self.batch_size
        if PREPARES_GRAPHS in self.backend.capabilities and self._whole(height, width, n) and not self.tta:
            cast(PreparingBackend, self.backend).prepare((n, self.spec.input_channels, height, width))

    # The steps, in the order a batch meets them.

    @overload
    def upscale(
        self,
        frames: np.ndarray,
        size: tuple[int, int] | None = None,
        compression: list[Compression | None] | None = None,
    ) -> np.ndarray: ...

    @overload
    def upscale(
        self,
        frames: torch.Tensor,
        size: tuple[int, int] | None = None,
        compression: list[Compression | None] | None = None,
    ) -> torch.Tensor: ...

    def upscale(
        self,
        frames: np.ndarray | torch.Tensor,
        size: tuple[int, int] | None = None,
        compression: list[Compression | None] | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Upscale frames and return the same kind: numpy (H, W[, C]) or (N, H, W, C), or torch (N, C, H, W);
        uint8, uint16 or float in [0, 1]. `size` (width, height) resamples the output to that size. `compression`
        (one per frame) is what the decoder said of each frame, for a model that takes the QP."""
        if isinstance(frames, torch.Tensor):
            return from_float(self.upscale_tensor(to_float(frames), size, compression), frames.dtype).to(frames.device)
        parts = NumpyFrames.split(frames)
        return parts.join(self.upscale_tensor(parts.color_nchw(self.to_device), size, compression), self.to_device)

    def upscale_tensor(
        self, x: torch.Tensor, size: tuple[int, int] | None = None, compression: list[Compression | None] | None = None
    ) -> torch.Tensor:
        """(N, C, H, W) float in [0, 1] -> (N, C, rH, rW) float32 in [0, 1] on the backend's device; with `size`
        (width, height), the model's output is resampled to it there (Lanczos, antialiased). A model that takes
        the QP gets each frame's `compression` (the decoder's, else a blind estimate). A recurrent model takes each
        frame as one with no past (noted once in the log)."""
        if self.spec.recurrent:
            if not self._noted_no_past:
                log.info(
                    "srstream: %s is a video model; these images are upscaled each with no past frames", self.spec.name
                )
                self._noted_no_past = True
            return self.step(x, None, size, compression)[0]
        x, grey = fit_channels(x, self.spec.channels, self.spec.name)
        if self.spec.descriptor.takes_qp:
            x = torch.cat([x, self.qp_planes(x, compression)], dim=1)
        if self.tta:
            y = self_ensemble(x, self._in_batches, transpose=self.spec.descriptor.transposable)
        else:
            y = self._in_batches(x)
        y = resize_to(y, size).clamp_(0, 1)
        return to_grey(y) if grey else y

    def step(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None,
        size: tuple[int, int] | None = None,
        compression: list[Compression | None] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One frame of each of N streams, (N, C, H, W), with their states (N, S, H, W) (None, or all-zero rows:
        no past) -> (SR frames as `upscale_tensor` gives them, the new states). A single-frame model: no state.
        A model that takes the QP gets each frame's `compression`, as in `upscale_tensor`."""
        if not self.spec.recurrent:
            return self.upscale_tensor(x, size, compression), None
        x, grey = fit_channels(x, self.spec.channels, self.spec.name)
        if self.spec.descriptor.takes_qp:
            x = torch.cat([x, self.qp_planes(x, compression)], dim=1)
        packed = pack_state(x, state if state is None else state.to(x.device), self.spec.descriptor.state_channels)
        y, new_state = unpack_state(self._in_batches(packed), self.spec.channels, self.scale)
        y = resize_to(y, size).clamp_(0, 1)
        return (to_grey(y) if grey else y), new_state

    def qp_planes(self, x: torch.Tensor, compression: list[Compression | None] | None) -> torch.Tensor:
        """(N, 1, H, W) QP planes for (N, C, H, W) frames: the decoder's facts where given, else the blind estimate
        from the frame's pixels (the first time, said in the log with the QP it found)."""
        facts = list(compression) if compression is not None else [None] * x.shape[0]
        planes = []
        for frame, fact in zip(x, facts):
            if fact is None:
                pixels = frame[:3].mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
                fact = estimated(pixels)
                if not self._noted_estimate:
                    how = (
                        "taken as clean (QP 0): no QP estimator is shipped"
                        if fact.source == ASSUMED
                        else f"a blind estimate from the pixels (QP {fact.mean_qp:.0f})"
                    )
                    log.warning(
                        "srstream: %s takes the codec's QP; none came with these frames: %s", self.spec.name, how
                    )
                    self._noted_estimate = True
            planes.append(torch.from_numpy(fact.plane(*frame.shape[-2:])))
        return self.to_device(torch.stack(planes)[:, None]).to(x.dtype)

    def _in_batches(self, x: torch.Tensor) -> torch.Tensor:
        # Whole batches may go straight to a pipelining backend; tiles and padded frames take the tiled path.
        n = min(x.shape[0], self.batch_size)
        h, w = x.shape[-2:]
        direct = self.backend if self._whole(h, w, n) else None
        return run_batches(x, self.batch_size, self._tiled, direct)

    def _tiled(self, x: torch.Tensor) -> torch.Tensor:
        net = partial(run_padded, self.backend, multiple=self.spec.multiple_of, scale=self.scale)
        h, w = x.shape[-2:]
        tile = self._tile_size(h, w, x.shape[0])
        return run_shrinking(x, net, self.scale, tile, self.spec.receptive_radius)

    def _whole(self, h: int, w: int, n: int) -> bool:
        # Frames that need neither tiles nor padding: the backend can take them as they are.
        return self._tile_size(h, w, n) == 0 and self.spec.multiple_of == 1

    def _tile_size(self, h: int, w: int, n: int = 1) -> int:
        return self.tiles.tile_size(h, w, n)
