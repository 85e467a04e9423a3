"""srstream/host_memory.py and medical/fit_check.py: the machine's free memory as the kernel states it, and a volume too
big for it refused before any work, in one line."""

import re
from pathlib import Path

import pytest

from medical.fit_check import BYTES_PER_OUTPUT_VOXEL, check_fits
from medical.volume import VolumeError
from srstream.host_memory import available_memory


def test_available_memory_is_the_kernels_memavailable():
    text = Path("/proc/meminfo").read_text()
    stated = int(re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M).group(1)) * 1024
    total = int(re.search(r"^MemTotal:\s+(\d+) kB", text, re.M).group(1)) * 1024
    got = available_memory()
    assert 0 < got <= total and abs(got - stated) < 512 << 20  # read moments apart: within 512 MiB


def test_a_volume_that_cannot_fit_fails_at_once_naming_the_file_and_the_sizes():
    free = available_memory()
    side = int((free / BYTES_PER_OUTPUT_VOXEL) ** (1 / 3)) + 1  # just over what is free at x1
    check_fits("small.nii.gz", (64, 64, 32), (2, 2, 1))  # a normal volume passes
    with pytest.raises(VolumeError, match=r"^big\.nii\.gz: upscaling \d+x\d+x\d+ by 2x2x2 needs about [\d.]+ GiB"
                                         r" of memory, [\d.]+ GiB is available; crop or split it$"):
        check_fits("big.nii.gz", (side, side, side), (2, 2, 2))
