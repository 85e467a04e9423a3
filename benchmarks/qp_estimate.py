"""The blind QP estimate (`training.qp_estimator`) against the decoder's true QP, on real footage it never saw.

    python benchmarks/qp_estimate.py [--clips-root DIR] [--frames 8] [--out JSON]

Every clip of benchmarks/footage_clips.toml and the shared clips, x4 area-shrunk, first N frames, through libx264
at CRF 18/23/28/35 and 256/1024 kbit/s: each frame's estimated mean QP against the decoder's (mean absolute error,
bias, correlation, per condition and overall), the uncompressed LR (QP 0), and libx265 at constant QP 22/30/38
(the decoder exports nothing for HEVC, so the truth there is the encoder's QP setting, its I frames only; P and B
frames get offsets).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.compressed_video import CLIPS_ROOT, area_downscale, conditions, manifest_clips, read_hr  # noqa: E402
from benchmarks.report import emit  # noqa: E402
from training import compression  # noqa: E402
from training.codec import compress_with_facts, decode_with_facts  # noqa: E402


def hevc_at(lr: np.ndarray, qp: int) -> np.ndarray:
    """The first frame (an I frame) of the clip through libx265 at constant `qp`."""
    import io

    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as output:
        stream = output.add_stream("libx265", rate=25)
        stream.width, stream.height, stream.pix_fmt = lr.shape[2], lr.shape[1], "yuv420p"
        stream.options = {"preset": "medium", "x265-params": f"qp={qp}:keyint=1:log-level=none:pools=none"}
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(lr[0]), format="rgb24")
        frame.pts = 0
        output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return decode_with_facts(buffer.getvalue())[0][0]


def measure(clips_root: Path, frames: int = 8) -> dict:
    """The estimate against the decoder on the benchmark's clips, per condition and overall."""
    per: dict[str, list[tuple[float, float]]] = {}
    for path, _ in manifest_clips("all", clips_root):
        if not path.is_file():
            continue
        hr = read_hr(path, frames)
        if len(hr) < 2:
            continue
        lr = area_downscale(hr)
        for name, encoding in conditions([18, 23, 28, 35], [256, 1024]).items():
            decoded, facts = compress_with_facts(lr, encoding)
            per.setdefault(name, []).extend((compression.estimate_qp(d), f.mean_qp) for d, f in zip(decoded, facts))
        per.setdefault("clean", []).extend((compression.estimate_qp(f), 0.0) for f in lr)
        for qp in (22, 30, 38):
            per.setdefault(f"hevc_qp{qp}", []).append((compression.estimate_qp(hevc_at(lr, qp)), float(qp)))

    def stats(pairs: list[tuple[float, float]]) -> dict:
        est, true = np.array(pairs).T
        corr = float(np.corrcoef(est, true)[0, 1]) if true.std() > 0 else None
        return {"frames": len(pairs), "mae": round(float(np.abs(est - true).mean()), 2),
                "bias": round(float((est - true).mean()), 2), "true_mean": round(float(true.mean()), 2),
                "estimate_mean": round(float(est.mean()), 2), "correlation": corr and round(corr, 3)}

    coded = [p for k, v in per.items() if k != "clean" and not k.startswith("hevc") for p in v]
    return {"conditions": {k: stats(v) for k, v in per.items()}, "all_encoded": stats(coded)}


def use(clips_root: Path, frames: int, crf: int = 28) -> dict:
    """What the estimate is for: footage-qp-fast-x4 on HEVC footage (whose decoder exports no QP) given the
    estimate or QP 0 (what it gets without one), against footage-fast-x4; Y-PSNR gain over bicubic on the held-out
    clips, sources weighted as one."""
    from benchmarks.compressed_video import SCALE, by_source
    from srstream.engine import Upscaler
    from training.codec import Encoding
    from training.evaluate import bicubic_upscale
    from training.metrics import psnr_y

    models = {"qp": Upscaler("footage-qp-fast-x4", tile=None), "rgb": Upscaler("footage-fast-x4", tile=None)}
    clips = []
    for path, group in manifest_clips("heldout", clips_root):
        if not path.is_file():
            continue
        hr = read_hr(path, frames)
        lr = area_downscale(hr)
        decoded, _ = compress_with_facts(lr, Encoding("libx265", crf, "medium", bframes=3))
        decoded = np.stack(decoded)
        base = np.mean([psnr_y(bicubic_upscale(d, SCALE), h, SCALE) for d, h in zip(decoded, hr)])
        facts = {"estimate": [compression.estimated(f) for f in decoded],
                 "qp0": [compression.constant(0.0, *f.shape[:2]) for f in decoded]}
        gains = {name: float(np.mean([psnr_y(o, h, SCALE) for o, h in zip(models["qp"].upscale(decoded, None, f), hr)])
                             - base) for name, f in facts.items()}
        gains["rgb"] = float(np.mean([psnr_y(o, h, SCALE) for o, h in zip(models["rgb"].upscale(decoded), hr)]) - base)
        clips.append({"clip": path.stem, "group": group, **{k: round(v, 3) for k, v in gains.items()}})
    return {"use": {"condition": f"libx265 CRF {crf}, held-out clips", "clips": clips,
                    "mean_gain_db": {k: round(by_source(clips, lambda c, k=k: c[k]), 3)
                                     for k in ("estimate", "qp0", "rgb")}}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="first N frames of each clip (default 8)")
    parser.add_argument("--clips-root", type=Path, default=CLIPS_ROOT)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "qp_estimate.json")
    parser.add_argument("--use", action="store_true", help="also the QP model on HEVC footage with the estimate, "
                        "with QP 0 and against the RGB model")
    args = parser.parse_args(argv)
    report: dict = {"benchmark": "qp_estimate", "estimator": "training/shipped/qp-estimator.safetensors",
                    "frames_asked": args.frames}
    report.update(measure(args.clips_root, args.frames))
    if args.use:
        report.update(use(args.clips_root, args.frames))
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
