"""Engine throughput: frames/s and effective TFLOP/s per backend, beside torch eager fp32, as JSON.

    python benchmarks/engine.py --model srresnet-x4 --size 320x180 --backends cpu,onnxruntime [--batch 1]

Effective TFLOP/s counts 2 FLOPs per multiply-accumulate of the model's convolutions (the useful work), whatever
the backend really executes. Each backend gets warm-up runs, then timed runs until `--seconds` have passed.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srstream import backends  # noqa: E402
from srstream.engine import Upscaler  # noqa: E402
from srstream.models import ModelSpec, load_model  # noqa: E402


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


def measure(upscaler: Upscaler, batch: torch.Tensor, seconds: float, warmup: int = 2) -> dict:
    """Frames per second of `upscaler.upscale_tensor` on `batch`, on the device the frames start on."""
    for _ in range(warmup):
        upscaler.upscale_tensor(batch)
    _sync(upscaler.backend.device)
    runs, start = 0, time.perf_counter()
    while True:
        upscaler.upscale_tensor(batch)
        runs += 1
        _sync(upscaler.backend.device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds and runs >= 3:
            break
    return {"frames": runs * batch.shape[0], "seconds": round(elapsed, 3),
            "fps": round(runs * batch.shape[0] / elapsed, 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="srresnet-x4")
    parser.add_argument("--size", default="320x180", help="LR input WxH")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--backends", default="cpu,onnxruntime", help="comma list; eager fp32 is always added")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--compile", action="store_true", help="torch.compile the CUDA backend")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    spec = load_model(args.model)
    gmacs_per_frame = conv_macs_per_pixel(spec) * w * h / 1e9
    frames = torch.rand(args.batch, spec.channels, h, w)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    runs = [("eager-fp32", dict(backend="cuda" if device == "cuda" else "cpu", half=False))]
    runs += [(name, dict(backend=name)) for name in args.backends.split(",") if name]
    results = []
    for label, options in runs:
        backend = options.pop("backend")
        if backend == "cuda" and args.compile and label != "eager-fp32":
            options["compile"] = True
        try:
            upscaler = Upscaler(spec, backend=backend, tile=None, batch_size=args.batch, **options)
        except Exception as exc:  # a missing backend is reported, the others still run
            results.append({"backend": label, "error": str(exc)})
            continue
        batch = frames.to(upscaler.backend.device) if backend in ("cuda", "tensorrt") else frames
        r = measure(upscaler, batch, args.seconds)
        r.update(backend=label, tflops=round(r["fps"] * gmacs_per_frame * 2 / 1e3, 4))
        results.append(r)
    base = next((r["fps"] for r in results if r["backend"] == "eager-fp32" and "fps" in r), None)
    for r in results:
        if base and "fps" in r:
            r["speedup_vs_eager_fp32"] = round(r["fps"] / base, 2)
    report = {
        "model": spec.name, "input": f"{w}x{h}", "output": f"{w * spec.scale}x{h * spec.scale}",
        "batch": args.batch, "gmacs_per_frame": round(gmacs_per_frame, 2),
        "device": torch.cuda.get_device_name() if device == "cuda" else f"{platform.machine()} CPU",
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "backends_available": [b for b in backends.NAMES[1:] if _available(b)], "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def _available(name: str) -> bool:
    try:
        backends.resolve(name)
        return True
    except backends.BackendUnavailable:
        return False


if __name__ == "__main__":
    sys.exit(main())
