"""TensorRT engines from the fp16 ONNX: one builder for full TensorRT (10/11) and TensorRT for RTX, one cache.

Full TensorRT is used where it imports; otherwise TensorRT-RTX (`pip install tensorrt-rtx`), whose builder needs no
GPU: it compiles ahead of time for a list of compute capabilities and finishes on the device at first run. Both
build strongly typed networks, so the precision comes from the graph (`export_onnx(half=True)`).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from srstream.export import INPUT, export_onnx, model_hash
from srstream.models import ModelSpec
from training.atomic import atomic_path
from training.errors import SrstreamError

DEFAULT_CACHE = Path(os.environ.get("SRSTREAM_CACHE", Path.home() / ".cache" / "srstream"))
# TensorRT-RTX's default ahead-of-time targets (its docs): Ampere, Ada, Blackwell. Turing (7.5) must be asked for.
RTX_DEFAULT_TARGETS = ("8.0", "8.6", "8.9", "12.0")


class TensorRTError(SrstreamError, RuntimeError):
    """TensorRT is missing, or refused the graph; the message is one line."""


@dataclass(frozen=True)
class Runtime:
    """The TensorRT flavour in use: its module, name ('tensorrt' or 'tensorrt-rtx') and version."""

    trt: ModuleType
    name: str
    version: str

    @property
    def is_rtx(self) -> bool:
        """TensorRT for RTX (ahead-of-time builds for compute capabilities) rather than full TensorRT."""
        return self.name == "tensorrt-rtx"


def find_runtime(prefer: str | None = None) -> Runtime:
    """Full TensorRT where it imports (and is not PyPI's download stub), else TensorRT-RTX; `prefer` forces one."""
    candidates = [("tensorrt", "tensorrt"), ("tensorrt_rtx", "tensorrt-rtx")]
    if prefer:
        candidates = [c for c in candidates if c[1] == prefer]
    reasons = []
    for module, name in candidates:
        try:
            trt = importlib.import_module(module)
            version = trt.__version__
            trt.Builder  # noqa: B018 - the stub package has no builder
        except (ImportError, AttributeError, OSError) as exc:
            reasons.append(f"{name}: {type(exc).__name__}")
            continue
        return Runtime(trt, name, version)
    raise TensorRTError(f"no TensorRT here (pip install 'srstream[tensorrt]' for TensorRT-RTX; {'; '.join(reasons)})")


@dataclass(frozen=True)
class Profile:
    """The input shapes one engine serves: batch and LR height/width ranges (min, opt, max)."""

    channels: int
    batch: tuple[int, int, int] = (1, 4, 8)
    height: tuple[int, int, int] = (16, 270, 1088)
    width: tuple[int, int, int] = (16, 480, 1920)

    def shapes(self) -> tuple[tuple[int, int, int, int], ...]:
        return tuple((self.batch[i], self.channels, self.height[i], self.width[i]) for i in range(3))

    def covers(self, shape: tuple[int, ...]) -> bool:
        lo, _, hi = self.shapes()
        return all(a <= s <= b for a, s, b in zip(lo, shape, hi))

    @classmethod
    def parse(cls, channels: int, batch: str, height: str, width: str) -> Profile:
        """From 'MIN,OPT,MAX' strings (or one number for a static dimension), checked."""
        dims: list[tuple[int, int, int]] = []
        for label, text in (("batch", batch), ("height", height), ("width", width)):
            try:
                values = [int(v) for v in str(text).split(",")]
            except ValueError:
                raise ValueError(f"--{label} {text!r}: expected MIN,OPT,MAX or one number") from None
            values = values * 3 if len(values) == 1 else values
            if len(values) != 3 or not 0 < values[0] <= values[1] <= values[2]:
                raise ValueError(f"--{label} {text}: expected 0 < MIN <= OPT <= MAX")
            low, opt, high = values
            dims.append((low, opt, high))
        return cls(channels, *dims)


def engine_key(model_sha: str, target: str, runtime: str, version: str, profile: Profile) -> str:
    """Cache key of an engine: it must be rebuilt when the model, the target GPU (or the compute capabilities of an
    ahead-of-time build), the runtime or its version, or the shape profile changes."""
    text = json.dumps(
        {"model": model_sha, "target": target, "runtime": runtime, "version": version, "profile": profile.shapes()},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class CollectingLogger:
    """Collects the builder's messages instead of printing them, so a failure can be told in one line."""

    def __init__(self, trt: ModuleType) -> None:
        outer = self
        base: Any = trt.ILogger  # a base class from a module loaded at run time

        class Logger(base):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity, msg) -> None:
                if severity <= trt.ILogger.Severity.ERROR:
                    outer.errors.append(str(msg))

        self.errors: list[str] = []
        self.logger = Logger()


def _targets(runtime: Runtime, targets: tuple[str, ...] | None) -> list:
    names = {f"{int(float(t))}.{str(t).split('.')[1] if '.' in str(t) else 0}" for t in targets or ()}
    table = {
        f"{v.name[2:-1]}.{v.name[-1]}": v
        for v in runtime.trt.ComputeCapability.__members__.values()
        if v.name.startswith("SM")
    }
    unknown = sorted(names - set(table))
    if unknown:
        raise TensorRTError(
            f"{runtime.name} {runtime.version} cannot target compute capability "
            f"{', '.join(unknown)} (it knows {', '.join(sorted(table, key=_cc_order))})"
        )
    return [table[n] for n in sorted(names)]


def _cc_order(cc: str) -> tuple[int, int]:
    major, minor = cc.split(".")
    return int(major), int(minor)


def build_engine(
    onnx_path: Path,
    profile: Profile,
    runtime: Runtime,
    targets: tuple[str, ...] | None = None,
    timing_cache: Path | None = None,
    workspace_gib: float = 4.0,
) -> bytes:
    """A serialized engine for `profile`. TensorRT-RTX builds for `targets` (compute capabilities, no GPU needed);
    full TensorRT builds for the GPU it runs on, reusing `timing_cache`."""
    trt = runtime.trt
    log = CollectingLogger(trt)
    builder = trt.Builder(log.logger)
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    # TensorRT 10 needs the flag for a strongly typed network; in 11 and in RTX every network is one.
    network = (
        builder.create_network(1 << int(flag))
        if flag is not None and not runtime.is_rtx and int(runtime.version.split(".")[0]) < 11
        else builder.create_network()
    )
    parser = trt.OnnxParser(network, log.logger)
    if not parser.parse(onnx_path.read_bytes()):
        raise TensorRTError(f"{onnx_path}: {runtime.name} {runtime.version} cannot build it: {_parser_errors(parser)}")
    config = builder.create_builder_config()
    if not runtime.is_rtx:  # RTX sizes its own workspace at run time; a limit here makes it allocate one now
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if runtime.is_rtx:
        chosen = _targets(runtime, targets or RTX_DEFAULT_TARGETS)
        config.num_compute_capabilities = len(chosen)
        for i, cc in enumerate(chosen):
            config.set_compute_capability(cc, i)
    elif timing_cache is not None:  # (RTX's timing cache would make the build look for a GPU)
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    opt_profile = builder.create_optimization_profile()
    opt_profile.set_shape(network.get_input(0).name or INPUT, *profile.shapes())
    config.add_optimization_profile(opt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        detail = log.errors[-1].splitlines()[0] if log.errors else "no reason given"
        raise TensorRTError(
            f"{onnx_path}: {runtime.name} failed to build an engine for profile {profile.shapes()} ({detail})"
        )
    if timing_cache is not None and not runtime.is_rtx:
        timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    return bytes(memoryview(serialized))


def _parser_errors(parser) -> str:
    parts = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        op, name = error.node_operator(), error.node_name()
        desc = " ".join(str(error.desc()).split())
        if op:
            parts.append(
                f"op {op}{f' (node {name})' if name else ''} is not supported"
                f"{'' if desc in ('false', '') else f': {desc}'}"
            )
        elif desc and not parts:
            parts.append(desc)
    return "; ".join(dict.fromkeys(parts)) or "the parser gave no reason"


def cached_engine(
    spec: ModelSpec,
    profile: Profile,
    runtime: Runtime,
    target: str,
    targets: tuple[str, ...] | None = None,
    cache_dir: str | Path | None = None,
) -> tuple[Path, bool]:
    """(engine path, built now?): the engine of `spec` for `profile`, from the cache or built into it. `target`
    names what it is for (the GPU for full TensorRT, the compute capabilities for an RTX build)."""
    cache = Path(cache_dir or DEFAULT_CACHE)
    cache.mkdir(parents=True, exist_ok=True)
    key = engine_key(model_hash(spec), target, runtime.name, runtime.version, profile)
    engine_path = cache / f"{spec.name}-{runtime.name}-{key}.engine"
    if engine_path.is_file():
        return engine_path, False
    with tempfile.TemporaryDirectory(dir=cache, prefix=".onnx-") as tmp:
        onnx_path = export_onnx(spec, Path(tmp) / f"{spec.name}-fp16.onnx", half=True)
        data = build_engine(onnx_path, profile, runtime, targets, timing_cache=cache / "timing.cache")
    with atomic_path(engine_path, suffix=".engine") as tmp_path:
        Path(tmp_path).write_bytes(data)
    return engine_path, True


def rtx_target(targets: tuple[str, ...] | None) -> str:
    """The cache's name for an ahead-of-time RTX build's targets."""
    return "sm:" + ",".join(sorted(targets or RTX_DEFAULT_TARGETS, key=_cc_order))
