"""What the CPU can do natively, for training and for the engine alike."""

from __future__ import annotations

import torch


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16), as torch detects it; without
    them oneDNN emulates bf16 and it is slower than fp32."""
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # torch without the query: assume not
        return False
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))
