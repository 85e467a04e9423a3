"""Benchmark evaluation: `python -m training.evaluate --model NAME_OR_PATH --data DIR --scale 4 [--json]`.

The standard SR protocol: crop HR to a multiple of the scale, LR by antialiased MATLAB bicubic (rounded to 8 bit),
PSNR/SSIM on BT.601 Y with `scale` pixels shaved; bicubic upscaling of the same LR is the baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from training.data import IMAGE_SUFFIXES
from training.degrade import imresize
from training.metrics import psnr_y, ssim_y
from training.weights import ModelLoadError, load_generator


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image, dtype=np.float64)).permute(2, 0, 1)[None]


def _to_uint8(tensor: torch.Tensor) -> np.ndarray:
    return tensor[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def benchmark_lr(hr: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """HR cropped to a multiple of `scale`, and its 8-bit LR by the benchmark bicubic."""
    h, w = hr.shape[:2]
    hr = hr[: h - h % scale, : w - w % scale]
    return hr, _to_uint8(imresize(_to_tensor(hr), 1.0 / scale))


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB bicubic upscaling of an 8-bit image, rounded to 8 bit."""
    return _to_uint8(imresize(_to_tensor(lr), scale, antialias=False))


@torch.no_grad()
def model_upscale(model: nn.Module, lr: np.ndarray, qp: float | None = None) -> np.ndarray:
    """Run a generator on an 8-bit (H, W, C) image; the output is rounded to 8 bit. A model that takes the QP
    gets the plane of `qp` (0 for the benchmark's clean LR: nothing was quantised)."""
    x = torch.from_numpy(np.array(lr, dtype=np.float32)).permute(2, 0, 1)[None].div(255)
    if qp is not None:
        x = torch.cat([x, torch.full_like(x[:, :1], qp / 51.0)], dim=1)
    return _to_uint8(model(x).double().mul(255))


def _read(path: Path, channels: int) -> tuple[np.ndarray, bool]:
    with Image.open(path) as im:
        grey = im.mode in ("L", "I;16", "I")
        array = np.asarray(im.convert("L" if channels == 1 else "RGB"))
    return (array[..., None] if channels == 1 else array), grey


def _metric_view(image: np.ndarray, grey: bool) -> np.ndarray:
    # Grey images are measured on their grey values (the benchmark scripts skip the YCbCr conversion for them).
    if image.shape[-1] == 1:
        return image[..., 0]
    if grey:
        return np.round(image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    return image


def evaluate(
    model: nn.Module, files: list[Path], scale: int, channels: int = 3, progress: bool = False, qp: float | None = None
) -> dict[str, Any]:
    """Per-image and mean Y-PSNR/SSIM of `model` (given the plane of `qp` where it takes the QP) and of bicubic
    over HR `files`."""
    rows = []
    for path in tqdm(files, desc="evaluating", disable=not progress, leave=False):
        hr_full, grey = _read(path, channels)
        hr, lr = benchmark_lr(hr_full, scale)
        sr, bicubic = model_upscale(model, lr, qp), bicubic_upscale(lr, scale)
        ref = _metric_view(hr, grey)
        sr_m, bic_m = _metric_view(sr, grey), _metric_view(bicubic, grey)
        rows.append(
            {
                "image": path.name,
                "psnr_y": psnr_y(sr_m, ref, scale),
                "ssim_y": ssim_y(sr_m, ref, scale),
                "bicubic_psnr_y": psnr_y(bic_m, ref, scale),
                "bicubic_ssim_y": ssim_y(bic_m, ref, scale),
            }
        )
    keys = ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y")
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    return {**means, "images": rows}


def image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted; errors name the folder."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no images in it")
    return files


def _table(name: str, result: dict[str, Any]) -> str:
    lines = [f"{'image':<24}{'bicubic PSNR':>14}{'SSIM':>8}{name + ' PSNR':>22}{'SSIM':>8}"]
    for r in result["images"] + [{"image": "mean", **result}]:
        lines.append(
            f"{r['image']:<24}{r['bicubic_psnr_y']:>14.2f}{r['bicubic_ssim_y']:>8.4f}"
            f"{r['psnr_y']:>22.2f}{r['ssim_y']:>8.4f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="shipped model name, .safetensors file or checkpoint")
    parser.add_argument("--data", required=True, type=Path, help="folder of HR images")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--record", metavar="SET", help="also write the means into the model card under SET")
    args = parser.parse_args(argv)
    try:
        model, descriptor = load_generator(args.model)
        if descriptor.scale != args.scale:
            raise ValueError(f"{args.model}: model is x{descriptor.scale}, asked to evaluate x{args.scale}")
        files = image_files(args.data)
        result = evaluate(
            model,
            files,
            args.scale,
            descriptor.channels,
            progress=not args.json,
            qp=0.0 if descriptor.takes_qp else None,
        )
    except (ModelLoadError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {"model": str(args.model), "data": str(args.data), "scale": args.scale, **result}
    if args.record:
        _record(args.model, args.record, result)
    print(json.dumps(result, indent=2) if args.json else _table(str(args.model), result))
    return 0


def _record(model: str, set_name: str, result: dict[str, Any]) -> None:
    from training.descriptor import with_evaluation
    from training.weights import resolve_model_path

    card_path = resolve_model_path(model).with_suffix(".json")
    row = {k: round(result[k], 4) for k in ("psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y")}
    card_path.write_text(json.dumps(with_evaluation(json.loads(card_path.read_text()), set_name, row), indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
