"""PyTorch backends: fp32 on CPU; fp16, channels_last, optional torch.compile and overlapped uploads on CUDA."""
from __future__ import annotations

import torch

from srstream.export import fold_batchnorm
from srstream.models import ModelSpec


class TorchBackend:
    """Runs the model with torch. On CUDA, weights are fp16 (`half=False` keeps fp32) and host-to-device copies go
    through pinned memory on a separate stream, so the next batch uploads while the current one computes."""

    def __init__(self, spec: ModelSpec, device: str | torch.device = "cpu", half: bool | None = None,
                 compile: bool = False) -> None:
        self.device = torch.device(device)
        self.half = (self.device.type == "cuda") if half is None else half
        if self.half and self.device.type != "cuda":
            raise ValueError("fp16 inference needs a CUDA device; the CPU backend runs fp32")
        self.dtype = torch.float16 if self.half else torch.float32
        module = fold_batchnorm(spec.module)
        self.module = module.to(self.device, self.dtype, memory_format=torch.channels_last)
        if compile:
            self.module = torch.compile(self.module, dynamic=True)
        self.name = "cuda" if self.device.type == "cuda" else "cpu"
        self.copy_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None

    def upload(self, x: torch.Tensor) -> torch.Tensor:
        """Start copying a host batch to the device; the result is safe to use on the current stream."""
        if self.copy_stream is None or x.device.type == "cuda":
            return x.to(self.device)
        pinned = x.pin_memory() if not x.is_pinned() else x
        with torch.cuda.stream(self.copy_stream):
            y = pinned.to(self.device, non_blocking=True)
        torch.cuda.current_stream(self.device).wait_stream(self.copy_stream)
        y.record_stream(torch.cuda.current_stream(self.device))
        return y

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = self.upload(x).to(self.dtype).contiguous(memory_format=torch.channels_last)
        return self.module(x).float()
