"""`srmed serve`: a DICOM node beside the PACS. It receives series by C-STORE (`receiver`), waits until each is
complete (`series`), upscales it with `srmed upscale`'s own plan and writer (`job`), and queues the derived series
on disk (`outbox`) for delivery by C-STORE or STOW-RS (`sender`); `security` holds what it lets in, `command` the
subcommand."""

from __future__ import annotations

import sys
import time


def log(message: str) -> None:
    """One line on stderr, stamped, for the node's log (a service manager keeps it)."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} srmed serve: {message}", file=sys.stderr, flush=True)
