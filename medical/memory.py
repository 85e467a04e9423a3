"""Will an upscaled volume fit? Checked before any work, so a huge volume fails at once with a clear reason."""
from __future__ import annotations

import os
from pathlib import Path

from medical.volume import VolumeError

# Working arrays per output voxel while a volume is upscaled: the float64 result, its cubic twin for the fallback,
# the network's float32 output, the fused float64 and the cast output (through-plane keeps two float32 estimates).
BYTES_PER_OUTPUT_VOXEL = 40


def available_bytes() -> int:
    """Memory the kernel says a new allocation can get without swapping (MemAvailable), else physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_fits(source: str, shape: tuple[int, ...], factors: tuple[int, int, int]) -> None:
    """Raise a one-line VolumeError if upscaling a volume of `shape` by `factors` needs more memory than is free."""
    voxels = 1
    for n, r in zip(shape[:3], factors):
        voxels *= n * r
    need = voxels * BYTES_PER_OUTPUT_VOXEL
    free = available_bytes()
    if need > free:
        size = "x".join(str(n) for n in shape[:3])
        raise VolumeError(f"{source}: upscaling {size} by {'x'.join(map(str, factors))} needs about "
                          f"{need / 2**30:.1f} GiB of memory, {free / 2**30:.1f} GiB is available; crop or split it")
