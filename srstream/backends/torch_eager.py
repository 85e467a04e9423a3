"""PyTorch backends: bf16 or fp32 on the CPU, fp16 on CUDA, all channels_last. On CUDA: one CUDA graph per input
shape (captured once, replayed for every batch of that shape), optional torch.compile, overlapped uploads."""

from __future__ import annotations

import logging
from collections import OrderedDict

import torch

from srstream.backends.precision import DTYPES, resolve_precision
from srstream.backends.registry import (
    PIPELINED_UPLOAD,
    PREPARES_GRAPHS,
    READY,
    Availability,
    BackendType,
    register,
)
from srstream.inference_graph import inference_graph
from srstream.models import ModelSpec

log = logging.getLogger("srstream")
GRAPH_SHAPES = 4  # captured graphs kept (each holds its activations): a video has one or two shapes


class _Graph:
    """One captured forward pass: copy a batch into `inputs`, replay, read `outputs` (overwritten by the next
    replay, so callers take a copy)."""

    def __init__(
        self, module: torch.nn.Module, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ) -> None:
        self.inputs = torch.zeros(shape, dtype=dtype, device=device).contiguous(memory_format=torch.channels_last)
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):  # cuDNN picks its algorithms for this shape before capture
                module(self.inputs)
        torch.cuda.current_stream(device).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.inference_mode():
            self.outputs = module(self.inputs)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.copy_(x)
        self.graph.replay()
        return self.outputs


class TorchBackend:
    """Runs the model's inference graph with torch in `precision` ('auto': fp16 on CUDA, bf16 on a CPU that has it
    natively, else fp32). On CUDA, host-to-device copies go through pinned memory on a separate stream, so the next
    batch uploads while the current one computes."""

    def __init__(
        self,
        spec: ModelSpec,
        device: str | torch.device = "cpu",
        precision: str = "auto",
        compile: bool = False,
        graphs: bool | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.dtype = DTYPES[self.precision]
        module = inference_graph(spec.module)
        self.module = module.to(  # type: ignore[call-overload]  # torch's stub takes memory_format only alone
            self.device, self.dtype, memory_format=torch.channels_last
        )
        if compile:
            # Static shapes: each (batch, height, width) compiles once, and a video keeps one shape.
            self.module = torch.compile(self.module, dynamic=False)
        self.name = "cuda" if self.device.type == "cuda" else "cpu"
        cuda = self.device.type == "cuda"
        self.graphs_enabled = cuda if graphs is None else (graphs and cuda)
        self._graphs: OrderedDict[tuple[int, ...], _Graph | None] = OrderedDict()
        self.copy_stream = torch.cuda.Stream(self.device) if cuda else None
        if cuda:
            # Static shapes: the fastest algorithm is worth finding once. The flag is process-wide (torch has no
            # per-module one), so other torch code in this process benchmarks its convolutions too.
            torch.backends.cudnn.benchmark = True
        # On the CPU an upload is no copy at all, so there is nothing to overlap.
        self.capabilities = frozenset({PIPELINED_UPLOAD} if cuda else ()) | frozenset(
            {PREPARES_GRAPHS} if self.graphs_enabled else ()
        )

    def upload(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event | None]:
        """Start copying a host batch to the device on the copy stream; returns it and the event marking the end
        of the copy. Call this for batch i+1 before running batch i and the two overlap."""
        if self.copy_stream is None or x.device.type == "cuda":
            return x.to(self.device), None
        pinned = x if x.is_pinned() else x.pin_memory()
        with torch.cuda.stream(self.copy_stream):
            y = pinned.to(self.device, non_blocking=True)
            done = torch.cuda.Event()
            done.record(self.copy_stream)
        y.record_stream(torch.cuda.current_stream(self.device))
        return y, done

    def prepare(self, shape: tuple[int, ...]) -> None:
        """Warm up (and capture the graph of) one input shape now, so that the first frames of a video of that
        shape do not wait for it."""
        if self.graphs_enabled:
            self._graph(tuple(shape))

    def _graph(self, shape: tuple[int, ...]) -> _Graph | None:
        if shape in self._graphs:
            self._graphs.move_to_end(shape)
            return self._graphs[shape]
        try:
            graph = _Graph(self.module, shape, self.dtype, self.device)
        except RuntimeError as exc:  # capture is not possible for every module (host syncs, CPU ops): run eager
            log.warning("srstream: no CUDA graph for input %s (%s); running eagerly", shape, str(exc)[:120])
            torch.cuda.synchronize(self.device)
            graph = None
        self._graphs[shape] = graph
        while len(self._graphs) > GRAPH_SHAPES:
            self._graphs.popitem(last=False)
        return graph

    @torch.inference_mode()
    def run(self, x: torch.Tensor, uploaded: torch.cuda.Event | None = None, graphs: bool = True) -> torch.Tensor:
        """Run a batch already on the device, once its upload event (if any) has completed; through the CUDA graph
        of its shape unless `graphs` is off (tiles: their shapes vary)."""
        if uploaded is not None:
            torch.cuda.current_stream(self.device).wait_event(uploaded)
        if self.graphs_enabled and graphs:
            n = x.shape[0]
            # A short last batch reuses the graph of a full one (padded) rather than capturing another.
            bigger = [s for s in self._graphs if s[1:] == tuple(x.shape[1:]) and s[0] > n and self._graphs[s]]
            shape = min(bigger) if bigger else tuple(x.shape)
            graph = self._graph(shape)
            if graph is not None:
                if shape[0] > n:
                    x = torch.cat([x, x.new_zeros((shape[0] - n, *x.shape[1:]))])
                # A copy: the graph's output is overwritten by its next replay.
                return graph(x)[:n].to(torch.float32, copy=True)
        x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return self.module(x).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(*self.upload(x), graphs=False)


class TorchCudaType(BackendType):
    """torch on the first CUDA GPU: fp16 by default, CUDA graphs, overlapped uploads."""

    name = "cuda"
    auto_rank = 1
    accelerator = True

    def available(self) -> Availability:
        if torch.cuda.is_available():
            return READY
        return Availability(False, "torch sees no CUDA GPU here (use --backend cpu)")

    def create(self, spec: ModelSpec, precision: str, **options) -> TorchBackend:
        return TorchBackend(spec, "cuda", precision=precision, **options)


class TorchCpuType(BackendType):
    """torch on the CPU: bf16 where the CPU has it natively, else fp32; runs everywhere."""

    name = "cpu"
    auto_rank = 2

    def create(self, spec: ModelSpec, precision: str, **options) -> TorchBackend:
        return TorchBackend(spec, "cpu", precision=precision, **options)


register(TorchCudaType())
register(TorchCpuType())
