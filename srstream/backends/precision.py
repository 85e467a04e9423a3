"""Which number format a backend computes in: fp16 on CUDA, bf16 on CPUs that do it natively, fp32 elsewhere."""

from __future__ import annotations

import torch

from training.errors import SrstreamError
from training.hardware import cpu_has_native_bf16

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(SrstreamError, ValueError):
    """A precision this backend or machine cannot run."""


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> fp16 on CUDA, bf16 on a CPU with native bf16, else fp32; explicit choices are checked."""
    if precision not in PRECISIONS:
        raise PrecisionError(f"unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise PrecisionError("precision fp16 needs a CUDA GPU; on the CPU use bf16 or fp32")
    return precision
