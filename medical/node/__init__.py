"""`srmed serve`: a DICOM node beside the PACS. It receives series by C-STORE (`receiver`), waits until each is
complete (`series`), upscales it with `srmed upscale`'s own plan and writer (`upscale`), and queues the derived series
on disk (`outbox`) for delivery by C-STORE or STOW-RS (`sender`); `security` holds what it lets in, `command` the
subcommand."""

from __future__ import annotations
