"""Engine throughput: frames/s and effective TFLOP/s per backend and precision, beside the plain network, as JSON.

    python benchmarks/engine_throughput.py --model srresnet-x4 --size 320x180 \
        --backends cpu:fp32,cpu:bf16,cpu [--batch 1]

The baseline `eager-fp32` is the plain network (BatchNorm folded, NCHW fp32, no other rewrite) called directly.
Each entry of `--backends` is BACKEND[:PRECISION] through the engine (`cpu` alone: the default precision).
Frames are real: the first frames of `--video` (the bundled sample clip by default) resized to `--size`.
Effective TFLOP/s counts 2 FLOPs per multiply-accumulate of the model's convolutions (the useful work), whatever
the backend really executes. Each run gets warm-up calls, then timed calls until `--seconds` have passed.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import emit

from srstream import backends
from srstream.backends.precision import cpu_has_native_bf16
from srstream.engine import Upscaler
from srstream.inference_graph import fold_batchnorm
from srstream.models import ModelSpec, load_model

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vtest_320x180.mp4"


def conv_macs_per_pixel(spec: ModelSpec) -> float:
    """Multiply-accumulates of every Conv2d per input pixel, counted with hooks on a small input."""
    total = 0

    def hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += output.numel() * k

    handles = [m.register_forward_hook(hook) for m in spec.module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        spec.module(torch.rand(1, spec.channels, 32, 32))
    for h in handles:
        h.remove()
    return total / (32 * 32)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(run: Callable[[torch.Tensor], object], batch: torch.Tensor, device: torch.device, seconds: float,
            warmup: int = 2) -> dict:
    """Frames per second of `run(batch)`, on the device the frames start on."""
    for _ in range(warmup):
        run(batch)
    _sync(device)
    runs, start = 0, time.perf_counter()
    while True:
        run(batch)
        runs += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and runs >= 3:
            break
    return {"frames": runs * batch.shape[0], "seconds": round(elapsed, 3),
            "fps": round(runs * batch.shape[0] / elapsed, 3)}


def real_frames(video: Path, count: int, width: int, height: int, channels: int) -> torch.Tensor:
    """`count` decoded frames of `video`, resized to width x height (bicubic, antialiased), as float NCHW."""
    import av

    with av.open(str(video)) as c:
        rgb = [f.to_ndarray(format="rgb24") for _, f in zip(range(count), c.decode(video=0))]
    x = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255
    if x.shape[-2:] != (height, width):
        x = torch.nn.functional.interpolate(x, size=(height, width), mode="bicubic", antialias=True).clamp(0, 1)
    return x.mean(dim=1, keepdim=True) if channels == 1 else x


def plain_network(spec: ModelSpec, device: str):
    """The network as written, BatchNorm folded, fp32 NCHW: what 'x times faster' is measured against."""
    module = fold_batchnorm(spec.module).to(device)

    @torch.inference_mode()
    def run(x: torch.Tensor) -> torch.Tensor:
        return module(x.to(device))
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="srresnet-x4")
    parser.add_argument("--size", default="320x180", help="LR input WxH")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--backends", default="cpu:fp32,cpu:bf16,cpu,onnxruntime",
                        help="comma list of BACKEND[:PRECISION]; the plain fp32 network is always added")
    parser.add_argument("--video", type=Path, default=SAMPLE, help="real frames from here (default the sample)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--compile", action="store_true", help="torch.compile the CUDA backend")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    spec = load_model(args.model)
    gmacs_per_frame = conv_macs_per_pixel(spec) * w * h / 1e9
    frames = real_frames(args.video, args.batch, w, h, spec.channels)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = [{"backend": "eager-fp32", "precision": "fp32",
                **measure(plain_network(spec, device), frames, torch.device(device), args.seconds)}]
    for entry in (e for e in args.backends.split(",") if e):
        backend, _, precision = entry.partition(":")
        options = {"compile": True} if backend == "cuda" and args.compile else {}
        try:
            upscaler = Upscaler(spec, backend=backend, tile=0, batch_size=args.batch, precision=precision or "auto",
                                **options)
        except Exception as exc:  # noqa: BLE001 - a missing backend is reported, the others still run
            results.append({"backend": entry, "error": str(exc)})
            continue
        batch = frames.to(upscaler.backend.device) if backend in ("cuda", "tensorrt") else frames
        r = measure(upscaler.upscale_tensor, batch, upscaler.backend.device, args.seconds)
        results.append({"backend": entry if precision else f"{backend} (default)", "precision": upscaler.precision,
                        **r})
    base = results[0]["fps"]
    for r in results:
        if "fps" in r:
            r["tflops"] = round(r["fps"] * gmacs_per_frame * 2 / 1e3, 4)
            r["speedup_vs_eager_fp32"] = round(r["fps"] / base, 2)
    report = {
        "model": spec.name, "input": f"{w}x{h}", "output": f"{w * spec.scale}x{h * spec.scale}",
        "frames": f"{args.video.name}, first {args.batch}", "batch": args.batch,
        "gmacs_per_frame": round(gmacs_per_frame, 2),
        "device": torch.cuda.get_device_name() if device == "cuda" else f"{platform.machine()} CPU",
        "cpu_native_bf16": cpu_has_native_bf16(),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "backends_available": [b for b in backends.NAMES[1:] if _available(b)], "results": results,
    }
    emit(report, args.out)
    return 0


def _available(name: str) -> bool:
    try:
        backends.resolve(name)
        return True
    except backends.BackendUnavailable:
        return False


if __name__ == "__main__":
    sys.exit(main())
