"""Benchmark fidelity through the product: `srstream upscale LR_DIR OUT_DIR` as a user runs it, scored by the
benchmark protocol (MATLAB-bicubic LR, Y-PSNR/SSIM with `scale` pixels shaved), as JSON.

    python benchmarks/cli_fidelity.py ../shared/data/sr/eval/Set5 --model srresnet-x4 [-- --precision fp32]

Anything after `--` goes to `srstream upscale` unchanged (backend, precision, tiling). This differs from
`python -m training.evaluate`, which runs the training network in fp32 directly: here the engine chooses the
backend and precision (bf16 on CPUs that have it), folds and rewrites the graph, and writes 8-bit PNGs.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from report import emit  # noqa: E402

from srstream.images import read_image, write_image  # noqa: E402
from training.evaluate import benchmark_lr  # noqa: E402
from training.metrics import psnr_y, ssim_y  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="folder of HR images (an evaluation set)")
    parser.add_argument("--model", default="srresnet-x4")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    images = sorted(p for p in args.data.iterdir() if p.suffix.lower() in (".png", ".bmp", ".jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        lr_dir, sr_dir = Path(tmp) / "lr", Path(tmp) / "sr"
        lr_dir.mkdir()
        pairs = {}
        for path in images:
            hr, lr = benchmark_lr(read_image(path)[..., :3], args.scale)
            write_image(lr_dir / f"{path.stem}.png", lr)
            pairs[path.stem] = hr
        command = [sys.executable, "-m", "srstream.cli", "upscale", str(lr_dir), str(sr_dir), "-m", args.model,
                   *extra]
        started = time.perf_counter()
        run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        seconds = time.perf_counter() - started
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return run.returncode
        rows = {}
        for stem, hr in pairs.items():
            sr = read_image(sr_dir / f"{stem}.png")
            rows[stem] = {"psnr_y": round(psnr_y(sr, hr, args.scale), 4),
                          "ssim_y": round(ssim_y(sr, hr, args.scale), 4)}
    report = {"data": args.data.name, "model": args.model, "scale": args.scale,
              "command": " ".join(["srstream", "upscale", "LR_DIR", "OUT_DIR", "-m", args.model, *extra]),
              "engine": run.stderr.strip().splitlines()[0] if run.stderr.strip() else "",
              "psnr_y": round(float(np.mean([r["psnr_y"] for r in rows.values()])), 4),
              "ssim_y": round(float(np.mean([r["ssim_y"] for r in rows.values()])), 4),
              "seconds": round(seconds, 1), "images": rows}
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
