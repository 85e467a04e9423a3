"""Backends run a generator on float NCHW batches in [0, 1]; they know nothing of tiles, dtypes or files.

Each is a callable `(N, C, H, W) float -> (N, C, rH, rW) float32` with a `name` and the `device` its output is on.
"""
from __future__ import annotations

import importlib.util
from typing import Protocol

import torch

from srstream.backends.precision import PrecisionError
from srstream.models import ModelSpec

NAMES = ("auto", "tensorrt", "cuda", "cpu", "onnxruntime")


class Backend(Protocol):
    name: str
    device: torch.device
    precision: str  # fp32, bf16 or fp16: what it computes in

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class BackendUnavailable(RuntimeError):
    """The asked-for backend cannot run on this machine."""


def tensorrt_available() -> bool:
    """A CUDA GPU is visible and a TensorRT that really imports (full, or TensorRT-RTX for a GPU it supports) is
    installed: the same test the builder makes, so that 'auto' never picks a TensorRT that would then fail."""
    if not torch.cuda.is_available():
        return False
    if importlib.util.find_spec("tensorrt") is None and importlib.util.find_spec("tensorrt_rtx") is None:
        return False
    from srstream.backends.tensorrt_build import TensorRTError, find_runtime

    try:
        runtime = find_runtime()
    except TensorRTError:  # PyPI's download stub, or libraries that fail to load
        return False
    if not runtime.is_rtx:
        return True
    major, minor = torch.cuda.get_device_capability()
    return f"{major}.{minor}" in RTX_GPUS


# Compute capabilities TensorRT-RTX compiles for (its support matrix: Turing, Ampere, Ada, Blackwell); not Hopper.
RTX_GPUS = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")


def resolve(name: str, precision: str = "auto") -> str:
    """'auto' -> TensorRT where it imports and a GPU is present (for fp16, its only precision), else CUDA, else
    CPU; others are checked."""
    if name not in NAMES:
        raise BackendUnavailable(f"unknown backend {name!r}: use one of {', '.join(NAMES)}")
    if name == "auto":
        if precision in ("auto", "fp16") and tensorrt_available():
            return "tensorrt"
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("backend 'cuda': torch sees no CUDA GPU here (use --backend cpu)")
    if name == "tensorrt" and not tensorrt_available():
        raise BackendUnavailable("backend 'tensorrt': needs a CUDA GPU and TensorRT (pip install "
                                 "'srstream[tensorrt]' gives TensorRT-RTX, for RTX-class GPUs), or use --backend "
                                 "cuda/cpu")
    if name == "onnxruntime" and importlib.util.find_spec("onnxruntime") is None:
        raise BackendUnavailable("backend 'onnxruntime': pip install 'srstream[onnx]'")
    return name


def create(name: str, spec: ModelSpec, precision: str = "auto", **options) -> Backend:
    """Build the backend `name` (already resolved) for `spec`, computing in `precision` (see `precision.py`)."""
    if name in ("tensorrt", "onnxruntime"):
        fixed = "fp16" if name == "tensorrt" else "fp32"
        if precision not in ("auto", fixed):
            raise PrecisionError(f"backend {name!r} runs {fixed} only, not {precision}")
    if name == "tensorrt":
        from srstream.backends.tensorrt_backend import TensorRTBackend
        return TensorRTBackend(spec, **options)
    if name == "onnxruntime":
        from srstream.backends.onnxruntime_backend import OnnxRuntimeBackend
        return OnnxRuntimeBackend(spec, **options)
    from srstream.backends.torch_eager import TorchBackend
    return TorchBackend(spec, "cuda" if name == "cuda" else "cpu", precision=precision, **options)
