"""Why a QP model's error flickers: one QP model on real clips, given the QP three ways: each frame's own map, the
stream's running mean (what the video front door gave every stream before a file's first frames were held for
their mean), and what the front door gives a file now (`training.compression.averaged`: the first 16 frames their
mean, then the running mean). Gain over bicubic and the error's flicker against bicubic's, per clip and CRF, with a
model without the QP for reference; one libx264 encode per clip and CRF, shared by every variant.

    python benchmarks/qp_flicker.py --clips-root ../data/bench-video --split tune --scale 2 --frames 6 \\
        --model footage-qp-fast-x2 --reference footage-fast-x2 --out benchmarks/results/qp_flicker_x2_tune.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import compressed_video as cv

from srstream.engine import Upscaler
from training.codec import Encoding, compress_with_facts
from training.compression import QpAverage, averaged
from training.evaluate import bicubic_upscale

VARIANTS = ("own", "running mean", "front door")


def given(facts: list, variant: str) -> list:
    """The QP facts a model is given under `variant`."""
    if variant == "own":
        return facts
    if variant == "running mean":
        average = QpAverage()
        return [average(f) for f in facts]
    return averaged(facts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips-root", type=Path, required=True)
    parser.add_argument("--split", default="tune", choices=["tune", "heldout", "all"])
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--crf", default="28,35")
    parser.add_argument("--model", required=True, help="a model that takes the QP")
    parser.add_argument("--reference", required=True, help="a model without it, for reference")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    cv.SCALE = args.scale
    model, reference = Upscaler(args.model, backend="cpu"), Upscaler(args.reference, backend="cpu")
    if not model.spec.descriptor.takes_qp:
        parser.error(f"--model {args.model}: does not take the QP")
    rows = []
    for path, _group in cv.manifest_clips(args.split, args.clips_root):
        hr = cv.read_hr(path, args.frames)
        if cv.why_skipped(hr, args.frames):
            continue
        lr = cv.area_downscale(hr)
        for crf in (int(c) for c in args.crf.split(",")):
            decoded, facts = compress_with_facts(lr, Encoding(crf=crf, preset="medium", bframes=3))
            base = cv.scores(np.stack([bicubic_upscale(f, args.scale) for f in decoded]), hr)
            row: dict = {"clip": path.name, "crf": crf, "pictures": "".join(f.picture if f else "?" for f in facts),
                         "frame_qp": [round(f.mean_qp, 1) if f else None for f in facts]}
            runs = {args.reference: (reference, None), **{v: (model, given(facts, v)) for v in VARIANTS}}
            for name, (upscaler, fx) in runs.items():
                s = cv.scores(np.asarray(upscaler.upscale(decoded, None, fx)), hr)
                row[name] = {"gain_db": round(s["psnr_y"] - base["psnr_y"], 3),
                             "flicker_ratio": round(s["flicker"] / base["flicker"], 3)}
            print(json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
    summary = {}
    for name in (args.reference, *VARIANTS):
        for crf in sorted({r["crf"] for r in rows}):
            cells = [r[name] for r in rows if r["crf"] == crf]
            summary[f"{name} crf{crf}"] = {
                "mean_gain_db": round(float(np.mean([c["gain_db"] for c in cells])), 3),
                "flicker_ratio": [min(c["flicker_ratio"] for c in cells), max(c["flicker_ratio"] for c in cells)]}
            print(f"{name:>20} crf{crf}: {summary[f'{name} crf{crf}']}")
    report = {"benchmark": "qp_flicker", "model": args.model, "reference": args.reference, "split": args.split,
              "scale": args.scale, "frames": args.frames, "summary": summary, "clips": rows}
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
