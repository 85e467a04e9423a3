"""ONNX export of the inference graph (see `inference_graph`) with dynamic batch, height and width."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch
from torch import nn

from srstream.inference_graph import inference_graph
from srstream.models import ModelSpec
from training.atomic import atomic_path

OPSET = 17
INPUT, OUTPUT = "lr", "sr"


class _HalfGraph(nn.Module):
    """fp32 in and out, fp16 inside: TensorRT's strongly typed networks take their precision from the graph."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net.half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def model_hash(spec: ModelSpec) -> str:
    """sha256 of the model's weights and architecture; changes whenever the model does."""
    h = hashlib.sha256(repr(type(spec.module)).encode() + repr(spec.descriptor.config).encode())
    for name, tensor in spec.module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()


def export_onnx(spec: ModelSpec, path: str | Path, half: bool = False) -> Path:
    """Write the ONNX graph of the model's inference graph (fp16 inside, fp32 I/O when `half`), dynamic N, H, W."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = inference_graph(spec.module).float()
    graph = _HalfGraph(net) if half else net
    example = torch.rand(1, spec.input_channels, 32, 32)
    with atomic_path(path, suffix=".onnx") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter warns that it is legacy; it is the one with dynamic_axes
        torch.onnx.export(
            graph,
            (example,),
            tmp,
            dynamo=False,
            opset_version=OPSET,
            input_names=[INPUT],
            output_names=[OUTPUT],
            do_constant_folding=True,
            dynamic_axes={
                INPUT: {0: "batch", 2: "height", 3: "width"},
                OUTPUT: {0: "batch", 2: "out_height", 3: "out_width"},
            },
        )
    return path
