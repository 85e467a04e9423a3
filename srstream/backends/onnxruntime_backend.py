"""ONNX Runtime backend: runs the exported graph (CPU provider here; CUDA provider where onnxruntime-gpu is)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import torch

from srstream.backends.registry import READY, Availability, BackendType, register
from srstream.export import INPUT, OUTPUT, export_onnx
from srstream.models import ModelSpec


class OnnxRuntimeBackend:
    """Exports the model to ONNX once (into `cache_dir` or a temporary folder) and runs it with onnxruntime."""

    def __init__(self, spec: ModelSpec, cache_dir: str | Path | None = None, threads: int = 0) -> None:
        import onnxruntime as ort

        self._tmp = None
        if cache_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="srstream-onnx-")
            cache_dir = self._tmp.name
        self.onnx_path = export_onnx(spec, Path(cache_dir) / f"{spec.name}.onnx")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.session = ort.InferenceSession(str(self.onnx_path), options, providers=providers)
        self.device = torch.device("cpu")
        self.name = "onnxruntime"
        self.precision = "fp32"
        self.dtype = torch.float32
        self.capabilities: frozenset[str] = frozenset()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().float().numpy())
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: array})[0])


class OnnxRuntimeType(BackendType):
    """The exported ONNX graph through onnxruntime, fp32; only when asked for by name."""

    name = "onnxruntime"
    fixed_precision = "fp32"

    def available(self) -> Availability:
        if importlib.util.find_spec("onnxruntime") is None:
            return Availability(False, "pip install 'srstream[onnx]'")
        return READY

    def create(self, spec: ModelSpec, precision: str, **options) -> OnnxRuntimeBackend:
        return OnnxRuntimeBackend(spec, **options)


register(OnnxRuntimeType())
