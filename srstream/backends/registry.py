"""The backend registry: each backend registers one `BackendType`; names, `auto` and the errors come from here.

A `BackendType` says whether it can run on this machine (`available`) and builds a running `Backend` for a model
(`create`). A running backend is a callable `(N, C, H, W) float -> (N, C, rH, rW) float32` on its device, and
declares what more it offers in `capabilities`: the engine reads that set and never probes for methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from srstream.backends.precision import PrecisionError
from srstream.models import ModelSpec
from training.errors import SrstreamError

PREPARES_GRAPHS = "prepares-graphs"  # `prepare(shape)` captures that shape's graph ahead of the first batch
PIPELINED_UPLOAD = "pipelined-upload"  # `upload(x)` / `run(x, event)`: the next batch copies while one computes


class BackendUnavailable(SrstreamError, RuntimeError):
    """The asked-for backend cannot run on this machine."""


class Backend(Protocol):
    """A model ready to run on one device, in one number format."""

    name: str
    device: torch.device
    precision: str  # fp32, bf16 or fp16: what it computes in
    dtype: torch.dtype  # what its activations are held in, for the tiler's memory estimate
    capabilities: frozenset[str]  # of PREPARES_GRAPHS, PIPELINED_UPLOAD

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class PipelinedBackend(Backend, Protocol):
    """A backend that declares PIPELINED_UPLOAD."""

    def upload(self, x: torch.Tensor) -> tuple[torch.Tensor, object]: ...

    def run(self, x: torch.Tensor, uploaded: object = None) -> torch.Tensor: ...


class PreparingBackend(Backend, Protocol):
    """A backend that declares PREPARES_GRAPHS."""

    def prepare(self, shape: tuple[int, ...]) -> None: ...


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here; `reason` (one line) says why not."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


READY = Availability(True)


class BackendType:
    """What a backend registers: its name, where `auto` ranks it (None: never picked by `auto`, lower first), the
    one precision it runs if it has only one, and how to check and build it."""

    name: str = ""
    auto_rank: int | None = None
    fixed_precision: str | None = None
    for_tuned_weights: str | None = None  # the backend for weights tuned on one input, where this one would
    # build an engine per set of weights (TensorRT): None runs them here
    accelerator: bool = False  # runs on a GPU: the video default may then be a larger model (srstream/defaults.py)

    def available(self) -> Availability:
        """Whether it can run on this machine (cheap; `auto` asks every ranked backend)."""
        return READY

    def runs(self, precision: str) -> bool:
        """Whether it can compute in `precision` (auto, fp32, bf16 or fp16)."""
        return self.fixed_precision is None or precision in ("auto", self.fixed_precision)

    def create(self, spec: ModelSpec, precision: str, **options) -> Backend:
        """A running backend for `spec` in `precision` ('auto': its own choice)."""
        raise NotImplementedError


_REGISTRY: dict[str, BackendType] = {}


def register(backend_type: BackendType) -> BackendType:
    """Make `backend_type` a `--backend` choice (names are unique; 'auto' is taken)."""
    name = backend_type.name
    if not name or name == "auto" or name in _REGISTRY:
        raise ValueError(f"cannot register a backend named {name!r}: empty, 'auto' or already registered")
    _REGISTRY[name] = backend_type
    return backend_type


def unregister(name: str) -> None:
    """Take a registered backend away again (tests, plugins that found they cannot run)."""
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """'auto' and every registered backend, in the order they registered."""
    return ("auto", *_REGISTRY)


def backend_type(name: str) -> BackendType:
    """The registered backend `name`, or BackendUnavailable naming the choices."""
    if name not in _REGISTRY:
        raise BackendUnavailable(f"unknown backend {name!r}: use one of {', '.join(names())}")
    return _REGISTRY[name]


def resolve(name: str, precision: str = "auto") -> str:
    """'auto' -> the lowest-ranked backend that runs `precision` and is available here; others are checked."""
    if name == "auto":
        return _auto(precision)
    availability = backend_type(name).available()
    if not availability:
        raise BackendUnavailable(f"backend {name!r}: {availability.reason}")
    return name


def _auto(precision: str) -> str:
    ranks = [(t.auto_rank, i, t) for i, t in enumerate(_REGISTRY.values()) if t.auto_rank is not None]
    ranked = [t for _, _, t in sorted(ranks)]  # i: ties keep the order they registered in
    # `runs` first: a precision the backend cannot compute in must not pay for its (possibly slow) check.
    for candidate in ranked:
        if candidate.runs(precision) and candidate.available():
            return candidate.name
    raise BackendUnavailable(f"backend 'auto': no registered backend runs {precision} here")


def create(name: str, spec: ModelSpec, precision: str = "auto", **options) -> Backend:
    """Build the backend `name` (already resolved) for `spec`, computing in `precision` (see `precision.py`)."""
    chosen = backend_type(name)
    if not chosen.runs(precision):
        raise PrecisionError(f"backend {name!r} runs {chosen.fixed_precision} only, not {precision}")
    return chosen.create(spec, precision, **options)
