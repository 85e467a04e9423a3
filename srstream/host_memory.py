"""How much memory this machine can give: the one reader of /proc/meminfo."""

from __future__ import annotations

import os
from pathlib import Path

FALLBACK = 4 << 30  # bytes assumed where neither the kernel nor sysconf can say


def available_memory() -> int:
    """Bytes of RAM a new allocation can get without swapping (MemAvailable), else physical memory, else 4 GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return FALLBACK
