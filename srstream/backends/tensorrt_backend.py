"""The `tensorrt` backend: an fp16 engine from the cache (see `tensorrt_build`), run on torch tensors on the GPU.

Full TensorRT builds for the GPU at hand; TensorRT-RTX builds for the GPU's compute capability and compiles the
rest just in time on the first run. Both execute with `set_tensor_address` / `execute_async_v3` on torch's stream.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from srstream.backends.registry import READY, Availability, BackendType, register
from srstream.backends.tensorrt_build import (
    INPUT,
    CollectingLogger,
    Profile,
    TensorRTError,
    cached_engine,
    find_runtime,
    rtx_target,
)
from srstream.export import OUTPUT
from srstream.models import ModelSpec

__all__ = ["RTX_GPUS", "Profile", "TensorRTBackend", "TensorRTError", "tensorrt_available"]

# Compute capabilities TensorRT-RTX compiles for (its support matrix: Turing, Ampere, Ada, Blackwell); not Hopper.
RTX_GPUS = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")


def tensorrt_available() -> bool:
    """A CUDA GPU is visible and a TensorRT that really imports (full, or TensorRT-RTX for a GPU it supports) is
    installed: the same test the builder makes, so that 'auto' never picks a TensorRT that would then fail."""
    if not torch.cuda.is_available():
        return False
    if importlib.util.find_spec("tensorrt") is None and importlib.util.find_spec("tensorrt_rtx") is None:
        return False
    from srstream.backends import (
        tensorrt_build,  # looked up now: tests stand a broken runtime in for it
    )

    try:
        runtime = tensorrt_build.find_runtime()
    except TensorRTError:  # PyPI's download stub, or libraries that fail to load
        return False
    if not runtime.is_rtx:
        return True
    major, minor = torch.cuda.get_device_capability()
    return f"{major}.{minor}" in RTX_GPUS


class TensorRTBackend:
    """Runs a cached engine of `spec` for `profile` on CUDA device `device`; `runtime` forces 'tensorrt' or
    'tensorrt-rtx' (default: full TensorRT where it imports)."""

    def __init__(
        self,
        spec: ModelSpec,
        profile: Profile | None = None,
        cache_dir: str | Path | None = None,
        device: int = 0,
        runtime: str | None = None,
    ) -> None:
        self.runtime = find_runtime(runtime)
        self.device = torch.device("cuda", device)
        self.profile = profile or Profile(channels=spec.input_channels)
        if self.runtime.is_rtx:
            major, minor = torch.cuda.get_device_capability(self.device)
            targets = (f"{major}.{minor}",)
            target = rtx_target(targets)
        else:
            targets, target = None, torch.cuda.get_device_name(self.device)
        self.engine_path, self.built = cached_engine(spec, self.profile, self.runtime, target, targets, cache_dir)
        trt = self.runtime.trt
        self._log = CollectingLogger(trt)
        self.trt_runtime = trt.Runtime(self._log.logger)
        self.engine = self.trt_runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if self.engine is None:
            detail = self._log.errors[-1].splitlines()[0] if self._log.errors else "no reason given"
            raise TensorRTError(
                f"{self.engine_path}: {self.runtime.name} cannot load it on "
                f"{torch.cuda.get_device_name(self.device)} ({detail})"
            )
        self.context = self.engine.create_execution_context()
        self.scale = spec.scale
        self.name = "tensorrt"
        self.precision = "fp16"
        # Budgeted as fp32, as before the registry: the engine's workspace and fp32 I/O tensors come on top.
        self.dtype = torch.float32
        self.capabilities: frozenset[str] = frozenset()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32).contiguous()
        if not self.profile.covers(tuple(x.shape)):
            raise ValueError(f"input {tuple(x.shape)} is outside the TensorRT profile {self.profile.shapes()}")
        n, c, h, w = x.shape
        y = torch.empty((n, c, h * self.scale, w * self.scale), device=self.device, dtype=torch.float32)
        self.context.set_input_shape(INPUT, tuple(x.shape))
        self.context.set_tensor_address(INPUT, x.data_ptr())
        self.context.set_tensor_address(OUTPUT, y.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        self._log.errors.clear()  # a failure reports its own reason, not an earlier one
        if not self.context.execute_async_v3(stream.cuda_stream):
            detail = self._log.errors[-1].splitlines()[0] if self._log.errors else "no reason given"
            raise TensorRTError(f"{self.runtime.name} execution failed ({detail})")
        return y


class TensorRTType(BackendType):
    """fp16 engines built once per model, GPU and profile; `auto`'s first choice where it runs."""

    name = "tensorrt"
    auto_rank = 0
    fixed_precision = "fp16"
    for_tuned_weights = "cuda"  # an engine build per tuned volume would cost more than the tuning saves
    accelerator = True

    def available(self) -> Availability:
        from srstream import (
            backends,  # through the package, so that a replaced `tensorrt_available` is honoured
        )

        if backends.tensorrt_available():
            return READY
        return Availability(
            False,
            "needs a CUDA GPU and TensorRT (pip install 'srstream[tensorrt]' gives "
            "TensorRT-RTX, for RTX-class GPUs), or use --backend cuda/cpu",
        )

    def create(self, spec: ModelSpec, precision: str, **options) -> TensorRTBackend:
        return TensorRTBackend(spec, **options)


register(TensorRTType())
