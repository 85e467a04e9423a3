"""TensorRT fp16 backend: a strongly typed engine built from the fp16 ONNX graph, cached on disk, run on torch tensors.

TensorRT 11 builds only strongly typed networks (no BuilderFlag.FP16), so precision comes from the graph: the ONNX is
exported with fp16 weights and activations inside and fp32 I/O (see `export_onnx(half=True)`).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from srstream.export import INPUT, OUTPUT, export_onnx, model_hash
from srstream.models import ModelSpec

DEFAULT_CACHE = Path(os.environ.get("SRSTREAM_CACHE", Path.home() / ".cache" / "srstream"))


@dataclass(frozen=True)
class Profile:
    """The input shapes one engine serves: batch and LR height/width ranges (min, opt, max)."""

    channels: int
    batch: tuple[int, int, int] = (1, 4, 8)
    height: tuple[int, int, int] = (16, 270, 1088)
    width: tuple[int, int, int] = (16, 480, 1920)

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        return tuple((self.batch[i], self.channels, self.height[i], self.width[i]) for i in range(3))

    def covers(self, shape: tuple[int, ...]) -> bool:
        lo, _, hi = self.shapes()
        return all(a <= s <= b for a, s, b in zip(lo, shape, hi))


def engine_key(model_sha: str, gpu_name: str, trt_version: str, profile: Profile) -> str:
    """Cache key of an engine: it must be rebuilt when the model, GPU, TensorRT or the shape profile changes."""
    text = json.dumps({"model": model_sha, "gpu": gpu_name, "tensorrt": trt_version,
                       "profile": profile.shapes()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _strongly_typed_network(trt, builder):
    # TensorRT 10 needs the flag to get a strongly typed network; in 11 every network is, and the flag may be gone.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is not None and int(trt.__version__.split(".")[0]) < 11:
        return builder.create_network(1 << int(flag))
    return builder.create_network()


def build_engine(onnx_path: Path, profile: Profile, timing_cache: Path, workspace_gib: float = 4.0) -> bytes:
    """Build a serialized engine for `profile`, reusing and updating the timing cache file."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = _strongly_typed_network(trt, builder)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"{onnx_path}: TensorRT cannot parse it ({errors})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(INPUT, *profile.shapes())
    config.add_optimization_profile(opt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"{onnx_path}: TensorRT failed to build an engine for profile {profile.shapes()}")
    timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return bytes(memoryview(serialized))


class TensorRTBackend:
    """Runs a cached TensorRT engine with `set_tensor_address` / `execute_async_v3` on torch's current stream."""

    def __init__(self, spec: ModelSpec, profile: Profile | None = None, cache_dir: str | Path | None = None,
                 device: int = 0) -> None:
        import tensorrt as trt

        self.device = torch.device("cuda", device)
        self.profile = profile or Profile(channels=spec.channels)
        cache = Path(cache_dir or DEFAULT_CACHE)
        cache.mkdir(parents=True, exist_ok=True)
        key = engine_key(model_hash(spec), torch.cuda.get_device_name(self.device), trt.__version__, self.profile)
        engine_path = cache / f"{spec.name}-{key}.engine"
        if not engine_path.is_file():
            onnx_path = export_onnx(spec, cache / f"{spec.name}-{key}-fp16.onnx", half=True)
            data = build_engine(onnx_path, self.profile, cache / "timing.cache")
            fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, engine_path)
        self.engine_path = engine_path
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        self.context = self.engine.create_execution_context()
        self.scale = spec.scale
        self.name = "tensorrt"
        self.precision = "fp16"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, torch.float32).contiguous()
        if not self.profile.covers(tuple(x.shape)):
            raise ValueError(f"input {tuple(x.shape)} is outside the TensorRT profile {self.profile.shapes()}")
        n, c, h, w = x.shape
        y = torch.empty((n, c, h * self.scale, w * self.scale), device=self.device, dtype=torch.float32)
        self.context.set_input_shape(INPUT, tuple(x.shape))
        self.context.set_tensor_address(INPUT, x.data_ptr())
        self.context.set_tensor_address(OUTPUT, y.data_ptr())
        stream = torch.cuda.current_stream(self.device)
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        return y
