"""Image fidelity for the image default's rule: Set5 and Set14 as published (MATLAB bicubic x4 LR), and the same LR
saved as JPEG (quality 75 and 50, as photos are shared), each model's mean and worst-image Y-PSNR gain over bicubic.

    python benchmarks/images.py [--models srresnet-x4,...] [--record MODEL ...] [--out JSON]

Through the engine (`srstream.engine.Upscaler`, CPU, fp32), as `srstream upscale` runs an image; a model that takes
the QP gets the blind estimate there, as it would at work. Set14's grey `bridge` is run as RGB. `--record` writes
the rows into the model's card (`Set5_gain`, `Set14_gain`, `jpeg_q75`, `jpeg_q50`), where `srstream.defaults`
reads them.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import emit  # noqa: E402
from srstream.engine import Upscaler  # noqa: E402
from training.descriptor import with_evaluation  # noqa: E402
from training.evaluate import benchmark_lr, bicubic_upscale  # noqa: E402
from training.metrics import psnr_y  # noqa: E402
from training.weights import resolve_model_path, shipped_models  # noqa: E402

EVAL = ROOT.parent / "shared" / "data" / "sr" / "eval"
SCALE = 4
QUALITIES = (75, 50)


def default_models() -> list[str]:
    """Every shipped single-frame RGB x4 model."""
    return [n for n, d in shipped_models().items() if d.scale == SCALE and d.channels == 3 and not d.recurrent]


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """`image` through a baseline JPEG at `quality` (PIL, 4:2:0), decoded."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def pairs(folder: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR, LR) for each image of a set, grey ones as RGB."""
    out = []
    for path in sorted(folder.iterdir()):
        hr = np.asarray(Image.open(path).convert("RGB"))
        out.append((path.stem, *benchmark_lr(hr, SCALE)))
    return out


def condition_rows(upscalers: dict[str, Upscaler], sets: dict[str, list]) -> dict[str, dict]:
    """Per condition (Set5_gain, Set14_gain, jpeg_q75, jpeg_q50) and model: per-image gains, mean and worst."""
    conditions = {f"{name}_gain": [(n, hr, lr) for n, hr, lr in images] for name, images in sets.items()}
    photos = [item for images in sets.values() for item in images]
    for q in QUALITIES:
        conditions[f"jpeg_q{q}"] = [(n, hr, jpeg(lr, q)) for n, hr, lr in photos]
    out: dict[str, dict] = {}
    for cond, items in conditions.items():
        base = {n: psnr_y(bicubic_upscale(lr, SCALE), hr, SCALE) for n, hr, lr in items}
        out[cond] = {}
        for model, up in upscalers.items():
            gains = {n: round(psnr_y(np.asarray(up.upscale(lr)), hr, SCALE) - base[n], 3) for n, hr, lr in items}
            out[cond][model] = {"gain_db": round(float(np.mean(list(gains.values()))), 3),
                                "worst_gain_db": min(gains.values()), "images": gains}
        print(f"{cond}: " + ", ".join(f"{m} {r['gain_db']:+.2f}" for m, r in out[cond].items()), file=sys.stderr)
    return out


def record(report: dict, model: str) -> Path:
    """Write `model`'s rows into its card; returns the card's path."""
    path = resolve_model_path(model).with_suffix(".json")
    card = json.loads(path.read_text())
    for cond, rows in report["conditions"].items():
        row = rows[model]
        task = (f"{cond[:-5]} x4 images" if cond.endswith("_gain") else
                f"Set5+Set14 x4 LR as JPEG q{cond[6:]}")
        card = with_evaluation(card, cond, {"task": task, "gain_db": row["gain_db"], "baseline": "bicubic",
                                            "worst_gain_db": row["worst_gain_db"],
                                            "data": "benchmarks/images.py", "report": report["path"]})
    path.write_text(json.dumps(card, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(default_models()))
    parser.add_argument("--record", action="append", default=[], metavar="MODEL")
    parser.add_argument("--data", type=Path, default=EVAL)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "images_cpu.json")
    args = parser.parse_args(argv)
    sets = {name: pairs(args.data / name) for name in ("Set5", "Set14")}
    upscalers = {m: Upscaler(m, backend="cpu", precision="fp32") for m in args.models.split(",") if m}
    out = args.out.resolve()
    report = {"benchmark": "images", "scale": SCALE, "qualities": list(QUALITIES),
              "path": str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out),
              "conditions": condition_rows(upscalers, sets)}
    emit(report, args.out)
    for model in args.record:
        print(f"recorded in {record(report, model)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
