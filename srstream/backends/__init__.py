"""Backends run a generator on float NCHW batches in [0, 1]; they know nothing of tiles, dtypes or files.

Each backend is one module that registers a `BackendType` (see `registry.py`): its name, whether it can run here
and why not, where `auto` ranks it, and how to build a running `Backend` for a model. `--backend` choices, the
`auto` choice (TensorRT where it runs and the precision is auto or fp16, else CUDA, else the CPU) and the errors
all come from the registry. Importing this package registers the built-in ones.
"""

from __future__ import annotations

# The order of these imports is the order the backends register in, which `auto` and the errors list.
# isort: off
from srstream.backends.tensorrt_backend import RTX_GPUS, tensorrt_available
from srstream.backends import torch_eager, onnxruntime_backend  # noqa: F401  (they register cuda, cpu, onnxruntime)

# isort: on
from srstream.backends.registry import (
    PIPELINED_UPLOAD,
    PREPARES_GRAPHS,
    READY,
    Availability,
    Backend,
    BackendType,
    BackendUnavailable,
    PipelinedBackend,
    PreparingBackend,
    backend_type,
    create,
    names,
    register,
    resolve,
    unregister,
)

NAMES = names()  # the built-in choices; `names()` also lists backends registered later

__all__ = [
    "NAMES",
    "PIPELINED_UPLOAD",
    "PREPARES_GRAPHS",
    "READY",
    "RTX_GPUS",
    "Availability",
    "Backend",
    "BackendType",
    "BackendUnavailable",
    "PipelinedBackend",
    "PreparingBackend",
    "backend_type",
    "create",
    "names",
    "register",
    "resolve",
    "tensorrt_available",
    "unregister",
]
