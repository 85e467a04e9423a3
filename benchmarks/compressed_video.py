"""Compressed-video fidelity: real footage shrunk x4 (or x2), through libx264 at several CRFs and camera bitrates,
upscaled, compared with the real frames.

    python benchmarks/compressed_video.py [--split heldout|tune|all] [--clips-root DIR] [--scale 4] [--frames 16]
        [--crf 18,23,28,35] [--kbps 256,1024] [--models fast-x4,...] [--data CLIP ...] [--model PATH ...]

The clips are `benchmarks/footage_clips.toml` (16 real clips from 8 sources, kept outside the repository under
--clips-root; `split` "tune" may be used to choose settings, "heldout" is only reported) plus vtest.avi and
small.mp4 from ../shared/data/video (held out). Means are over sources, each source weighted as one (Vid4's four
clips count once), beside the worst clip. For each clip: the first N frames are the HR reference (cropped so both
sides divide by 2 x scale, so that the LR has the even sides yuv420p needs), the LR is their area downscale (block
means), encoded as one libx264 stream (PyAV, preset medium, yuv420p, one GOP, 3 B frames) at each CRF and at each
average bitrate (kbit/s at the LR size, VBV capped at it) and decoded. A model of another scale than --scale runs
as `--outscale` does: its output resampled to the HR size. Bicubic (MATLAB) and every model
(`srstream.engine.Upscaler`, CPU) upscale the decoded LR; a recurrent model (its card's `temporal.recurrent`)
runs frame by frame in display order through `Upscaler.step`, carrying its state from frame to frame, from a zero
state at the clip's start (as a live stream would), its fps timed over that loop. Reported per clip and CRF:
Y-PSNR and SSIM (BT.601, 4-pixel border shaved, `training.metrics`) and their gains over bicubic; the temporal
stability of the error (mean absolute frame-to-frame change of SR - HR, and of bicubic - HR, and their ratio: below
1 flickers less than bicubic); and the model's CPU speed in frames a second at the LR size. A markdown table of the
means over clips is printed after the JSON. `--tune SECONDS` adds each camera model tuned on each decoded clip
(`srstream tune`: the LR footage as delivered, degraded further, is its training data; the HR frames are never seen).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from torchmetrics.functional.image import structural_similarity_index_measure  # noqa: E402

from benchmarks.report import emit  # noqa: E402
from srstream.engine import Upscaler  # noqa: E402
from srstream.frame_format import from_float  # noqa: E402
from training.codec import Encoding, compress_with_facts  # noqa: E402
from training.compression import averaged  # noqa: E402
from training.evaluate import bicubic_upscale  # noqa: E402
from training.footage_tune import TuneSettings, camera_settings, fine_tune  # noqa: E402
from training.metrics import psnr_y, rgb_to_y, ssim_y  # noqa: E402
from training.weights import shipped_models  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video"
CLIPS = [VIDEO / "vtest.avi", VIDEO / "small.mp4"]
MANIFEST = ROOT / "benchmarks" / "footage_clips.toml"
CLIPS_ROOT = ROOT.parent / "data" / "bench-video"
SCALE = 4
MIN_FRAMES = 3
MIN_LR_SIDE = 32
SSIM_STRIDE = 4  # SSIM on every 4th frame (frames 0, 4, 8, ...): a 720p SSIM costs about a second on this CPU


def default_models(scale: int) -> list[str]:
    """Every shipped RGB model of `scale` (the ones that take video), by name."""
    return [name for name, d in shipped_models().items() if d.scale == scale and d.channels == 3]


def manifest_clips(split: str, root: Path) -> list[tuple[Path, str]]:
    """(file, source group) of the manifest's clips in `split` ('all' for both), then the shared clips (held out)."""
    import tomllib

    clips = tomllib.loads(MANIFEST.read_text())["clip"]
    chosen = [(root / c["file"], c["group"]) for c in clips if split == "all" or c["split"] == split]
    shared = [(path, "shared-" + path.stem) for path in CLIPS] if split in ("all", "heldout") else []
    return chosen + shared


def conditions(crfs: list[int], kbps: list[int]) -> dict[str, Encoding]:
    """Each condition's name ('crf28', 'kbps256') and its libx264 encoding."""
    out = {f"crf{c}": Encoding("libx264", c, "medium", bframes=3) for c in crfs}
    out.update({f"kbps{k}": Encoding("libx264", 23, "medium", bframes=3, kbps=k) for k in kbps})
    return out


def read_hr(path: Path, count: int) -> np.ndarray:
    """The first `count` frames of a video as RGB uint8 (N, H, W, 3), cropped to sides divisible by 2 x SCALE."""
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == count:
                break
    if not frames:
        return np.zeros((0, 0, 0, 3), np.uint8)
    clip = np.stack(frames)
    step = 2 * SCALE
    h, w = clip.shape[1] - clip.shape[1] % step, clip.shape[2] - clip.shape[2] % step
    return clip[:, :h, :w]


def area_downscale(hr: np.ndarray) -> np.ndarray:
    """x4 area downscale (the mean of each 4x4 block), rounded to 8 bit."""
    n, h, w, c = hr.shape
    blocks = hr.reshape(n, h // SCALE, SCALE, w // SCALE, SCALE, c).astype(np.float64)
    return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def why_skipped(hr: np.ndarray, frames: int) -> str | None:
    """Why a clip cannot be measured (too few frames, too small), or None."""
    if len(hr) < min(MIN_FRAMES, frames):
        return f"{len(hr)} frames, fewer than {min(MIN_FRAMES, frames)}"
    if min(hr.shape[1:3]) < MIN_LR_SIDE * SCALE:
        return f"{hr.shape[2]}x{hr.shape[1]} is smaller than {MIN_LR_SIDE * SCALE} px on a side"
    return None


def flicker(output: np.ndarray, hr: np.ndarray) -> float:
    """Mean absolute frame-to-frame change of the error (output - HR), in 8-bit levels."""
    error = output.astype(np.float32) - hr.astype(np.float32)
    return float(np.abs(np.diff(error, axis=0)).mean()) if len(error) > 1 else 0.0


def ssim_y32(output: np.ndarray, reference: np.ndarray) -> float:
    """`training.metrics.ssim_y` (same window, luma and border) computed in float32: ten times faster on 720p,
    equal to it within about 1e-4 (`check_ssim`; the report gives the difference measured)."""
    a, b = (torch.from_numpy(rgb_to_y(x)[SCALE:-SCALE, SCALE:-SCALE]).float()[None, None] for x in (output, reference))
    return float(structural_similarity_index_measure(a, b, data_range=255.0, gaussian_kernel=True, sigma=1.5,
                                                      kernel_size=11))


def check_ssim(output: np.ndarray, reference: np.ndarray) -> float:
    """|ssim_y32 - training.metrics.ssim_y| on one frame pair."""
    return abs(ssim_y32(output, reference) - ssim_y(output, reference, SCALE))


def scores(output: np.ndarray, hr: np.ndarray) -> dict[str, float]:
    """Mean Y-PSNR over the frames, mean SSIM over every SSIM_STRIDE-th frame, and the error's flicker."""
    return {"psnr_y": float(np.mean([psnr_y(o, r, SCALE) for o, r in zip(output, hr)])),
            "ssim_y": float(np.mean([ssim_y32(o, r) for o, r in zip(output[::SSIM_STRIDE], hr[::SSIM_STRIDE])])),
            "flicker": flicker(output, hr)}


def model_key(model: str) -> str:
    """A model's name in the report: a shipped name, a weights file's stem, or a checkpoint's run folder."""
    path = Path(model)
    if path.suffix == ".safetensors":
        return path.stem
    return path.parent.name if path.suffix == ".pt" else model


def step_through(upscaler: Upscaler, lr: np.ndarray, facts: list | None = None) -> np.ndarray:
    """A recurrent model over the clip frame by frame in display order, its state carried, zero at frame 0 (with
    each frame's decoder `facts`, for a model that takes the QP)."""
    state, out = None, []
    for i, frame in enumerate(lr):
        x = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div_(255)
        sr, state = upscaler.step(x, state, None, facts and facts[i : i + 1])
        out.append(from_float(sr, torch.uint8)[0].permute(1, 2, 0).cpu().numpy())
    return np.stack(out)


def upscale_timed(upscaler: Upscaler, lr: np.ndarray, hr_size: tuple[int, int], facts: list | None = None
                  ) -> tuple[np.ndarray, float]:
    """The upscaled frames (resampled to `hr_size`, (H, W), where the model's scale is another) and the frames a
    second of the call (after a warm-up batch at this size); a recurrent model through `step_through`. A model
    that takes the QP gets the decoder's `facts` averaged over the clip so far, as the video front door gives them."""
    size = None if upscaler.scale == SCALE else (hr_size[1], hr_size[0])
    facts = averaged(facts) if upscaler.spec.descriptor.takes_qp and facts is not None else None
    if upscaler.spec.recurrent:
        step_through(upscaler, lr[:1], facts)  # warm-up at this size
        started = time.perf_counter()
        out = step_through(upscaler, lr, facts)
        return out, len(lr) / (time.perf_counter() - started)
    upscaler.upscale(lr[:upscaler.batch_size], size, facts and facts[:upscaler.batch_size])
    started = time.perf_counter()
    out = upscaler.upscale(lr, size, facts)
    return np.asarray(out), len(lr) / (time.perf_counter() - started)


def tuned_on(footage: np.ndarray, upscalers: dict[str, Upscaler], seconds: float) -> dict[str, Upscaler]:
    """`srstream tune` on the decoded LR clip (what the camera delivers; never the HR) for each single-frame camera
    model: NAME+tuned."""
    out = {}
    for name, upscaler in upscalers.items():
        descriptor = upscaler.spec.descriptor
        if descriptor.camera_degradation is None or upscaler.spec.recurrent:
            continue
        module, log = fine_tune(upscaler.spec.module, footage, camera_settings(descriptor.camera_degradation),
                                SCALE, TuneSettings(seconds=seconds), progress=False,
                                qp_input=descriptor.takes_qp)
        print(f"  tuned {name}: {log['steps']} steps, L1 {log['first_l1']} -> {log['last_l1']}", file=sys.stderr)
        out[f"{name}+tuned"] = Upscaler(upscaler.spec.tuned(module, name=f"{name}+tuned", tuned=log), backend="cpu")
    return out


def measure_condition(hr: np.ndarray, lr: np.ndarray, encoding: Encoding, upscalers: dict[str, Upscaler],
                      tune_seconds: float = 0.0) -> dict:
    """Bicubic and every model on the LR clip through `encoding`: scores, gains and ratios over bicubic; with
    `tune_seconds`, also each camera model tuned on the decoded clip."""
    decoded, facts = compress_with_facts(lr, encoding)
    bicubic = np.stack([bicubic_upscale(f, SCALE) for f in decoded])
    base = scores(bicubic, hr)
    row = {"lr_psnr_y": round(float(np.mean([psnr_y(d, c, 0) for d, c in zip(decoded, lr)])), 3),
           "bicubic": {k: round(v, 4) for k, v in base.items()}}
    if tune_seconds:
        upscalers = {**upscalers, **tuned_on(decoded, upscalers, tune_seconds)}
    for name, upscaler in upscalers.items():
        sr, fps = upscale_timed(upscaler, decoded, hr.shape[1:3], facts)
        s = scores(sr, hr)
        row[name] = {"psnr_y": round(s["psnr_y"], 3), "ssim_y": round(s["ssim_y"], 4),
                     "gain_db": round(s["psnr_y"] - base["psnr_y"], 3),
                     "ssim_gain": round(s["ssim_y"] - base["ssim_y"], 4), "flicker": round(s["flicker"], 3),
                     "flicker_ratio": round(s["flicker"] / base["flicker"], 3) if base["flicker"] else None,
                     "fps": round(fps, 2)}
    return row


def measured(clips: list[dict]) -> list[str]:
    """The models in the report, as measured (tuned copies included), in order."""
    row = clips[0]["conditions"][next(iter(clips[0]["conditions"]))]
    return [m for m, r in row.items() if isinstance(r, dict) and "gain_db" in r]


def by_source(clips: list[dict], value) -> float:
    """The mean over sources of the mean over each source's clips of `value(clip)`: each source weighs as one."""
    groups: dict[str, list[float]] = {}
    for clip in clips:
        groups.setdefault(clip["group"], []).append(value(clip))
    return float(np.mean([np.mean(v) for v in groups.values()]))


def summary(clips: list[dict], names: list[str], models: list[str]) -> dict:
    """Per condition and model: the source-weighted means of the gains, the flicker ratio and fps, and the worst
    clip's gain."""
    out: dict = {}
    for cond in names:
        out[cond] = {m: {**{k: round(by_source(clips, lambda c, k=k, m=m, cond=cond: c["conditions"][cond][m][k]),
                                     3 if k != "ssim_gain" else 4)
                            for k in ("gain_db", "ssim_gain", "flicker_ratio", "fps")},
                         "worst_gain_db": round(min(c["conditions"][cond][m]["gain_db"] for c in clips), 3),
                         "worse_flicker_clips": sum(c["conditions"][cond][m]["flicker_ratio"] > 1 for c in clips)}
                     for m in models}
    return out


def table(report: dict) -> str:
    """The summary as a markdown table (one row per CRF and model), then per-clip gains."""
    clips = [Path(c["clip"]).name for c in report["clips"]]
    lines = ["| condition | model | mean gain dB | SSIM gain | flicker ratio | fps (LR) | " +
             " | ".join(f"{c} gain dB" for c in clips) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(clips)]
    for cond, models in report["summary"].items():
        for name, s in models.items():
            per_clip = " | ".join(f"{c['conditions'][cond][name]['gain_db']:+.2f}" for c in report["clips"])
            lines.append(f"| {cond} | {name} | {s['gain_db']:+.2f} | {s['ssim_gain']:+.4f} | "
                         f"{s['flicker_ratio']:.3f} | {s['fps']:.1f} | {per_clip} |")
    return "\n".join(lines)


def run_clip(path: Path, group: str, frames: int, encodings: dict[str, Encoding], upscalers: dict[str, Upscaler],
             tune_seconds: float = 0.0) -> dict | str:
    """One clip's report, or the reason it was skipped."""
    hr = read_hr(path, frames)
    reason = why_skipped(hr, frames)
    if reason:
        return reason
    lr = area_downscale(hr)
    result = {"clip": str(path), "group": group, "frames": len(hr), "hr": f"{hr.shape[2]}x{hr.shape[1]}",
              "lr": f"{lr.shape[2]}x{lr.shape[1]}",
              "ssim_check": float(check_ssim(bicubic_upscale(lr[0], SCALE), hr[0])), "conditions": {}}
    for cond, encoding in encodings.items():
        row = result["conditions"][cond] = measure_condition(hr, lr, encoding, upscalers, tune_seconds)
        print(f"{path.name} {cond}: " + ", ".join(f"{m} {r['gain_db']:+.2f} dB" for m, r in row.items()
                                                  if isinstance(r, dict) and "gain_db" in r), file=sys.stderr)
    return result


def record(report: dict, model: str) -> Path:
    """Write `model`'s means over the clips, one row per CRF ('compressed_crf28'), into its model card (as
    `srstream models` shows them); the per-clip figures stay in the report. Returns the card path."""
    from training.descriptor import with_evaluation
    from training.weights import resolve_model_path

    key = model_key(model)
    card_path = resolve_model_path(model).with_suffix(".json")
    card = json.loads(card_path.read_text())
    clips = ", ".join(f"{Path(c['clip']).stem} ({c['frames']} frames)" for c in report["clips"])
    prefix = "compressed_" if report["scale"] == 4 else f"compressed_x{report['scale']}_"
    for cond, models in report["summary"].items():
        row = models[key]
        what = f"CRF {cond[3:]}" if cond.startswith("crf") else f"{cond[4:]} kbit/s"
        card = with_evaluation(card, prefix + cond, {
            "task": f"video x{report['scale']} x264 {what}", "gain_db": row["gain_db"], "baseline": "bicubic",
            "worst_gain_db": row["worst_gain_db"], "fps": row["fps"],
            "ssim_gain": row["ssim_gain"], "flicker_ratio": row["flicker_ratio"],
            "data": f"benchmarks/compressed_video.py --split {report['split']}: {clips}; x{report['scale']} area "
                    "downscale; mean over sources (each weighs as one)",
            "report": report.get("path", "")})
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card_path


def merged(reports: list[dict]) -> dict:
    """One report of several runs over the same clips, frames and conditions, each model's rows from the run that
    measured it; the summary anew. Only runs whose encodes came out identical (bicubic equal everywhere) merge:
    libx264 is not reproducible between runs here (on 17 of 52 x2 cells bicubic moved by up to 0.03 dB, at the
    same thread count), and the rule must compare models on the same streams."""
    first = reports[0]
    for other in reports[1:]:
        if [(c["clip"], c["frames"]) for c in other["clips"]] != [(c["clip"], c["frames"]) for c in first["clips"]]:
            raise SystemExit("error: --merge: the reports measured other clips or frame counts")
        for a, b in zip(first["clips"], other["clips"]):
            for cond in a["conditions"]:
                if a["conditions"][cond]["bicubic"] != b["conditions"][cond]["bicubic"]:
                    raise SystemExit(f"error: --merge: {a['clip']} {cond}: bicubic differs between the reports")
                a["conditions"][cond].update({k: v for k, v in b["conditions"][cond].items() if k != "bicubic"})
        first["models"].update(other["models"])
        first["backends"].update(other["backends"])
        first["note"] = "; ".join(n for n in (first["note"], other["note"]) if n)
    first["summary"] = summary(first["clips"], list(first["summary"]), measured(first["clips"]))
    return first


def _relative(path: Path) -> str:
    """`path` as the cards name a report: relative to the repository where it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", action="append", default=[], type=Path, help="another clip (repeatable)")
    parser.add_argument("--split", choices=("heldout", "tune", "all"), default="heldout",
                        help="which clips of benchmarks/footage_clips.toml (default: heldout)")
    parser.add_argument("--clips-root", type=Path, default=CLIPS_ROOT, help="where the manifest's files are")
    parser.add_argument("--scale", type=int, choices=(2, 3, 4), default=4, help="the downscale factor (default 4)")
    parser.add_argument("--frames", type=int, default=16, help="first N frames of each clip (default 16)")
    parser.add_argument("--crf", default="18,23,28,35", help="libx264 CRFs, comma-separated")
    parser.add_argument("--kbps", default="256,1024", help="libx264 average bitrates at the LR size (kbit/s)")
    parser.add_argument("--models", help="shipped names or weight files, comma-separated (default: every shipped "
                        "RGB model of --scale)")
    parser.add_argument("--model", dest="paths", action="append", default=[], metavar="PATH",
                        help="a model file (.safetensors with its card, or a trainer checkpoint.pt) beside --models; "
                             "recurrent ones are run with their state (repeatable)")
    parser.add_argument("--tune", type=float, default=0.0, metavar="SECONDS",
                        help="also tune each camera model on each decoded clip for this long (srstream tune)")
    parser.add_argument("--record", metavar="MODEL", action="append", default=[],
                        help="also write MODEL's mean gains into its model card (repeatable)")
    parser.add_argument("--from", dest="from_report", type=Path, metavar="REPORT",
                        help="measure nothing: --record from this earlier report (JSON)")
    parser.add_argument("--merge", nargs="+", type=Path, metavar="REPORT",
                        help="measure nothing: merge these reports of other models on the same clips into --out")
    parser.add_argument("--note", default="", help="a remark kept in the report (e.g. the machine was busy)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "compressed_video_cpu.json")
    return parser


def measure(args: argparse.Namespace) -> dict | None:
    """Every clip of the split (and --data) under every condition and model: the report, or None when no clip
    could be measured."""
    global SCALE
    SCALE = args.scale
    encodings = conditions([int(c) for c in args.crf.split(",") if c], [int(k) for k in args.kbps.split(",") if k])
    names = args.models.split(",") if args.models is not None else default_models(SCALE)
    models = [m for m in names if m] + [str(p) for p in args.paths]
    upscalers = {model_key(m): Upscaler(m, backend="cpu") for m in models}
    clips, skipped = [], []
    inputs = manifest_clips(args.split, args.clips_root) + [(p, p.stem) for p in args.data]
    for path, group in inputs:
        result = (run_clip(path, group, args.frames, encodings, upscalers, args.tune) if path.is_file()
                  else "no such file")
        if isinstance(result, str):
            print(f"skipped {path}: {result}", file=sys.stderr)
            skipped.append({"clip": str(path), "why": result})
        else:
            clips.append(result)
    if not clips:
        return None
    return {"benchmark": "compressed_video", "note": args.note, "scale": SCALE, "split": args.split,
            "downscale": f"area ({SCALE}x{SCALE} block means)", "weighting": "mean over sources, each weighs as one",
            "codec": "libx264 preset medium yuv420p, one GOP, 3 B frames (PyAV); CRF, or ABR at kbit/s with the "
                     "VBV capped at it", "frames_asked": args.frames,
            "ssim": f"every {SSIM_STRIDE}th frame, float32 (|diff| to training.metrics.ssim_y on a frame: "
                    f"{max(c['ssim_check'] for c in clips):.1e})",
            "hardware": f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads",
            "backends": {m: u.label for m, u in upscalers.items()},
            "models": {model_key(m): m for m in models},
            "recurrent": [m for m, u in upscalers.items() if u.spec.recurrent], "clips": clips, "skipped": skipped,
            "tune_seconds": args.tune, "summary": summary(clips, list(encodings), measured(clips)),
            "path": _relative(args.out)}


def main(argv: list[str] | None = None) -> int:
    """Measure every clip (or merge or record earlier reports), print and write the report; 2 when no clip could
    be measured."""
    args = _parser().parse_args(argv)
    if args.merge:
        report = {**merged([json.loads(p.read_text()) for p in args.merge]), "path": _relative(args.out)}
    elif args.from_report:
        report = {**json.loads(args.from_report.read_text()), "path": _relative(args.from_report)}
    else:
        report = measure(args)
        if report is None:
            print("error: no clip could be measured", file=sys.stderr)
            return 2
    if not args.from_report:
        emit(report, args.out)
        print("\n" + table(report))
    for model in args.record:
        print(f"recorded in {record(report, model)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
