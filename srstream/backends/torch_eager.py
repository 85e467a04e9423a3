"""PyTorch backends: bf16 or fp32 on the CPU, fp16 on CUDA, all channels_last; optional torch.compile and
overlapped uploads on CUDA."""
from __future__ import annotations

import torch

from srstream.backends.precision import DTYPES, resolve_precision
from srstream.inference_graph import inference_graph
from srstream.models import ModelSpec


class TorchBackend:
    """Runs the model's inference graph with torch in `precision` ('auto': fp16 on CUDA, bf16 on a CPU that has it
    natively, else fp32). On CUDA, host-to-device copies go through pinned memory on a separate stream, so the next
    batch uploads while the current one computes."""

    def __init__(self, spec: ModelSpec, device: str | torch.device = "cpu", precision: str = "auto",
                 compile: bool = False) -> None:
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.dtype = DTYPES[self.precision]
        module = inference_graph(spec.module)
        self.module = module.to(self.device, self.dtype, memory_format=torch.channels_last)
        if compile:
            self.module = torch.compile(self.module, dynamic=True)
        self.name = "cuda" if self.device.type == "cuda" else "cpu"
        self.copy_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

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

    @torch.inference_mode()
    def run(self, x: torch.Tensor, uploaded: torch.cuda.Event | None = None) -> torch.Tensor:
        """Run a batch already on the device, once its upload event (if any) has completed."""
        if uploaded is not None:
            torch.cuda.current_stream(self.device).wait_event(uploaded)
        x = x.to(self.dtype).contiguous(memory_format=torch.channels_last)
        return self.module(x).float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(*self.upload(x))
