"""Will an upscaled volume fit? Checked before any work, so a huge volume fails at once with a clear reason."""

from __future__ import annotations

from medical.volume import VolumeError
from srstream.host_memory import available_memory

# Working arrays per output voxel while a volume is upscaled: the float64 result, its cubic twin for the fallback,
# the network's float32 output, the fused float64 and the cast output (through-plane keeps two float32 estimates).
BYTES_PER_OUTPUT_VOXEL = 40


def check_fits(source: str, shape: tuple[int, ...], factors: tuple[float, float, float]) -> None:
    """Raise a one-line VolumeError if upscaling a volume of `shape` by `factors` needs more memory than is free."""
    voxels: float = 1
    for n, r in zip(shape[:3], factors):
        voxels *= n * r
    need = voxels * BYTES_PER_OUTPUT_VOXEL
    free = available_memory()
    if need > free:
        size = "x".join(str(n) for n in shape[:3])
        raise VolumeError(
            f"{source}: upscaling {size} by {'x'.join(f'{r:g}' for r in factors)} needs about "
            f"{need / 2**30:.1f} GiB of memory, {free / 2**30:.1f} GiB is available; crop or split it"
        )
