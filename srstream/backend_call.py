"""Calling a backend on a stack of frames: in batches of a given size, and, where the backend declares
PIPELINED_UPLOAD, uploading batch i+1 while batch i computes. Knows nothing of tiles or models."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

import torch

from srstream.backends import PIPELINED_UPLOAD, Backend, PipelinedBackend

Net = Callable[[torch.Tensor], torch.Tensor]


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on `device`: pinned and asynchronous on CUDA (ordered on the current stream)."""
    if x.device == device:
        return x
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


def batches(x: torch.Tensor, size: int) -> list[torch.Tensor]:
    """`x` cut along its first axis into pieces of `size` (the last may be shorter)."""
    return [x[i : i + size] for i in range(0, x.shape[0], size)]


def can_pipeline(backend: Backend) -> bool:
    """Whether the backend declared overlapped uploads."""
    return PIPELINED_UPLOAD in backend.capabilities


def pipelined(backend: PipelinedBackend, chunks: list[torch.Tensor]) -> Iterator[torch.Tensor]:
    """The backend's outputs for `chunks`, each uploaded on the copy stream while the one before computes."""
    pending = backend.upload(chunks[0])
    for i in range(len(chunks)):
        current = pending
        if i + 1 < len(chunks):
            pending = backend.upload(chunks[i + 1])
        yield backend.run(*current)


def run_batches(x: torch.Tensor, size: int, run: Net, backend: Backend | None = None) -> torch.Tensor:
    """`run` on each batch of `size` frames, concatenated; given a `backend` that can pipeline, the batches go
    straight through it overlapped instead, and back through `run` if that runs out of memory."""
    chunks = batches(x, size)
    if backend is not None and can_pipeline(backend):
        try:
            return torch.cat(list(pipelined(cast(PipelinedBackend, backend), chunks)))
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()  # `run` tiles, and shrinks its tiles until they fit
    return torch.cat([run(c) for c in chunks])
