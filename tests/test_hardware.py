"""training/hardware.py: bf16 is taken as native exactly where the CPU has AVX512-BF16 or AMX-BF16."""

import os
from pathlib import Path

import pytest

from training.hardware import cpu_has_native_bf16


@pytest.mark.skipif(os.environ.get("ATEN_CPU_CAPABILITY") is not None, reason="torch told to imitate another CPU")
def test_native_bf16_follows_the_cpus_own_flags():
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    assert cpu_has_native_bf16() == bool({"avx512_bf16", "amx_bf16"} & flags)
