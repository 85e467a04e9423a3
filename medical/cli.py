"""`srmed upscale IN... -o OUTDIR --scale 2 [--through-plane] [--format nifti|dicom|same]`: batch SR of volumes.

IN is a NIfTI file or a folder of DICOM files (every series in it is a volume). Each volume gets OUTDIR/NAME.nii.gz
or OUTDIR/NAME/ (a DICOM series) and OUTDIR/NAME.json (shapes, spacing, model, backend, time). A volume whose
report already exists is skipped; a volume that fails is reported and the others go on; the exit status is 1 if
any failed.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from medical.memory import check_fits
from medical.volume import Volume, VolumeError
from srstream.backends.precision import PRECISIONS
from srstream.ray_tasks import RayUnavailable, run_as_ray_tasks

if TYPE_CHECKING:  # for the annotations; the functions import it where they run it
    from srstream.engine import Upscaler


@dataclass(frozen=True)
class Task:
    """One volume to process: where it comes from and what to call its outputs."""

    source: str
    series_uid: str | None
    name: str


def discover(inputs: list[str]) -> list[Task]:
    """NIfTI files as they are; folders expanded into their DICOM series."""
    from medical.dicom_read import find_series
    from medical.nifti import is_nifti

    tasks = []
    for item in inputs:
        path = Path(item)
        if is_nifti(path) or path.is_file():
            stem = re.sub(r"\.nii(\.gz)?$", "", path.name)
            tasks.append(Task(str(path), None, stem))
        elif path.is_dir():
            for n, series in enumerate(find_series(path)):
                label = re.sub(r"[^A-Za-z0-9_-]+", "_", series.description).strip("_") or "series"
                tasks.append(Task(str(path), series.uid, f"{path.name}_{n + 1:02d}_{label}"))
        else:
            raise VolumeError(f"{path}: no such file or directory")
    return tasks


def _read(task: Task, volume_index: int | None) -> Volume:
    from medical.nifti import read_nifti

    if task.series_uid is None:
        return read_nifti(task.source, volume_index)
    from medical.dicom_read import find_series, read_series

    series = next(s for s in find_series(task.source) if s.uid == task.series_uid)
    return read_series(series, volume_index)


def default_model(scale: float, through_plane: bool) -> str:
    """Through-plane: `mri-thick` (any ratio) where shipped, else mri-thick-xN; in-plane: mri-xN."""
    from training.weights import shipped_models

    models = shipped_models()
    if through_plane:
        if "mri-thick" in models:
            return "mri-thick"
        if f"mri-thick-x{scale:g}" in models:
            return f"mri-thick-x{scale:g}"
    return f"mri-x{scale:g}"


def acquisition_of(volume: Volume, args: argparse.Namespace, upscaler: Upscaler) -> dict:
    """The slice axis as acquired and as asked for: spacing and thickness (mm), target spacing, slice profile."""
    from medical.profile import choose_profile

    spacing = volume.spacing[args.axis]
    # SliceThickness describes the DICOM slice axis, which the reader puts last; other axes have none.
    recorded = volume.meta.get("slice_thickness") if args.axis == 2 else None
    thickness = args.slice_thickness or recorded or spacing
    source = "--slice-thickness" if args.slice_thickness else "SliceThickness" if recorded else \
        "the slice spacing (no thickness recorded for this axis)"
    if args.spacing:
        target = args.spacing
    else:
        factor = args.scale if args.scale_given or not upscaler.spec.descriptor.through_plane_factor else \
            upscaler.spec.descriptor.through_plane_factor
        target = spacing / factor
    profile, evidence = choose_profile(volume, args.axis, spacing, thickness, args.profile)
    return {"spacing_mm": round(spacing, 6), "thickness_mm": round(float(thickness), 6),
            "thickness_from": source, "target_spacing_mm": round(target, 6), "ratio": round(spacing / target, 6),
            "profile": profile, "profile_evidence": evidence}


ECLARE_PATCHES = 1_000_000  # ECLARE's self-supervised budget: about a million patches per volume
GPU_SECONDS_CAP = 900.0


def self_supervised_budget(option: str, upscaler: Upscaler, through_plane: bool) -> tuple[float, int | None] | None:
    """(seconds, patches) of self-supervised tuning, or None. 'auto' (the default) tunes through-plane models on
    a GPU with ECLARE's budget (capped at GPU_SECONDS_CAP s) and skips it on the CPU, where it takes minutes per
    volume; 'off' never tunes; a number is a time budget in seconds anywhere."""
    if option == "off":
        return None
    if option == "auto":
        if through_plane and upscaler.device.type == "cuda" and upscaler.spec.scale == 1:
            return GPU_SECONDS_CAP, ECLARE_PATCHES
        return None
    seconds = float(option)
    return (seconds, None) if seconds > 0 else None


def process(task: Task, args: argparse.Namespace, upscaler: Upscaler) -> dict:
    """Read, upscale, write and report one volume."""
    from medical.nifti import is_nifti, write_nifti
    from medical.slicewise import upscale_in_plane, upscale_through_plane
    from training.acquisition import Acquisition

    started = time.perf_counter()
    if task.series_uid is None and is_nifti(task.source) and not args.through_plane:
        # The header alone says how big it is: fail before reading.
        import nibabel as nib
        from nibabel.filebasedimages import ImageFileError

        try:
            factors = tuple(1 if a == args.axis else upscaler.scale for a in range(3))
            check_fits(task.source, nib.load(task.source).shape, factors)
        except (OSError, ImageFileError):
            pass  # unreadable: the reader below says so in its own words
    volume = _read(task, args.volume)
    plan = acquisition_of(volume, args, upscaler) if args.through_plane else None
    if args.through_plane:
        factors = tuple(plan["ratio"] if a == args.axis else 1 for a in range(3))
    else:
        factors = tuple(1 if a == args.axis else upscaler.scale for a in range(3))
    check_fits(task.source, volume.shape, factors)
    fmt = args.format if args.format != "same" else ("nifti" if task.series_uid is None else "dicom")
    out_dir = Path(args.output)
    tuning = None
    budget = self_supervised_budget(args.self_supervised, upscaler, args.through_plane)
    if budget is not None:
        from medical.self_supervised import fine_tune
        from srstream.engine import Upscaler


        # A through-plane model learns this acquisition; an x r model (in-plane or through-plane) learns x r.
        learns_acquisition = plan is not None and upscaler.spec.descriptor.through_plane
        acquisition = Acquisition(plan["spacing_mm"], plan["thickness_mm"], plan["profile"]) \
            if learns_acquisition else None
        seconds, patches = budget
        spec, tuning = fine_tune(upscaler.spec, volume, axis=args.axis, seconds=seconds, max_patches=patches,
                                 acquisition=acquisition,
                                 target=plan["target_spacing_mm"] if learns_acquisition else None,
                                 device=upscaler.device)
        # Weights tuned for one volume would need a TensorRT engine of their own (a build per volume): CUDA instead.
        backend = "cuda" if upscaler.backend_name == "tensorrt" else upscaler.backend_name
        upscaler = Upscaler(spec, backend=backend, batch_size=upscaler.batch_size, tta=upscaler.tta,
                            precision=upscaler.precision)
    if args.through_plane:
        result = upscale_through_plane(volume, upscaler, axis=args.axis, progress=not args.quiet,
                                       spacing=plan["target_spacing_mm"])
        what = f"through-plane {plan['spacing_mm']:g} -> {plan['target_spacing_mm']:g} mm"
    else:
        result = upscale_in_plane(volume, upscaler, axis=args.axis, progress=not args.quiet)
        what = f"in-plane x{upscaler.scale}"
    description = f"srstream {upscaler.spec.name} {what} axis {args.axis}"
    if fmt == "nifti":
        target = out_dir / f"{task.name}.nii.gz"
        clipped = write_nifti(result, target, description)
    else:
        from medical.dicom_write import write_dicom_series

        target = out_dir / task.name
        clipped = write_dicom_series(result, volume, target, description,
                                     slice_thickness=plan["target_spacing_mm"] if plan else None)
    report = {"input": task.source, "series_uid": task.series_uid, "output": str(target), "format": fmt,
              "input_shape": list(volume.shape), "output_shape": list(result.shape),
              "input_spacing_mm": [round(v, 6) for v in volume.spacing],
              "output_spacing_mm": [round(v, 6) for v in result.spacing],
              "mode": "through-plane" if args.through_plane else "in-plane", "axis": args.axis,
              "slice_axis": plan, "model": upscaler.spec.name,
              "scale": plan["ratio"] if plan else upscaler.scale, "backend": upscaler.backend_name,
              "precision": upscaler.precision, "tta": upscaler.tta,
              "intensity_window": list(result.meta["window"]), "clipped_voxels": clipped,
              "self_supervised": tuning,
              "seconds": round(time.perf_counter() - started, 2)}
    if args.preview:
        from medical.preview import write_preview

        report["preview"] = str(write_preview(volume, result, out_dir / f"{task.name}_preview.png", args.axis))
    return report


def build_parser() -> argparse.ArgumentParser:
    from srstream import __version__

    parser = argparse.ArgumentParser(prog="srmed", description="Super-resolution of MRI/CT volumes")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upscale", help="upscale NIfTI files and DICOM series into OUTDIR")
    up.add_argument("inputs", nargs="+", metavar="IN", help=".nii/.nii.gz files or folders of DICOM files")
    up.add_argument("-o", "--output", required=True, metavar="OUTDIR")
    up.add_argument("--scale", type=float, default=None,
                    help="in-plane: 2 or 4 (picks mri-xN; default 2); through-plane: the factor, any ratio "
                    "(shorthand for --spacing SPACING/N)")
    up.add_argument("-m", "--model", help="model name or path (default: mri-x<scale> in-plane; mri-thick, "
                    "for any ratio, with --through-plane)")
    up.add_argument("--backend", default="auto")
    up.add_argument("--precision", default="auto", choices=PRECISIONS,
                    help="number format: auto (default) is fp16 on CUDA, bf16 on CPUs with native bf16, else fp32")
    up.add_argument("--through-plane", action="store_true", help="upscale only the slice axis (thick slices)")
    up.add_argument("--spacing", type=float, metavar="MM",
                    help="through-plane: the target spacing along the slice axis (any ratio to the input's)")
    up.add_argument("--slice-thickness", type=float, metavar="MM",
                    help="through-plane: the slices' thickness (default: DICOM's SliceThickness; for NIfTI, "
                    "the spacing)")
    up.add_argument("--profile", choices=("auto", "box", "gaussian"), default="auto",
                    help="through-plane: the slice profile (FWHM = thickness) the model is tuned for with "
                    "--self-supervised; auto estimates it from the volume (default)")
    up.add_argument("--axis", type=int, default=2, choices=(0, 1, 2), help="slice axis (default 2)")
    up.add_argument("--format", default="same", choices=("nifti", "dicom", "same"))
    up.add_argument("--volume", type=int, help="which volume of a 4-D input / time series")
    up.add_argument("--self-supervised", default="auto", metavar="SECONDS|auto|off",
                    help="first fine-tune the model on the volume's own sharp slices, degraded by its own "
                    "acquisition (SMORE/ECLARE): for SECONDS, or 'auto' (default): through-plane on a GPU with "
                    "ECLARE's budget of 1M patches, not on the CPU")
    up.add_argument("--batch", type=int, default=8, help="slices per engine call")
    up.add_argument("--tta", action="store_true", help="self-ensemble: average the model over flips and transposes "
                    "of each slice (8x the time, 4x through-plane; a little more fidelity)")
    up.add_argument("--preview", action="store_true", help="write a before/after PNG montage per volume")
    up.add_argument("--overwrite", "-y", action="store_true", help="redo volumes whose report exists")
    up.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                    help="run volumes as Ray tasks: on a local Ray (no ADDRESS) or the cluster at ADDRESS")
    up.add_argument("-q", "--quiet", action="store_true")
    return parser


def run_volume(task: Task, args: argparse.Namespace, upscaler=None) -> tuple[dict | None, dict | None]:
    """(report, None) for a volume done, (None, failure) for one that failed; builds the engine if not given."""
    try:
        if upscaler is None:  # a Ray worker: its own engine, on its own GPU if it was given one
            from srstream.engine import Upscaler

            upscaler = Upscaler(args.model, backend=args.backend, batch_size=args.batch, tta=args.tta,
                                precision=args.precision)
        return process(task, args, upscaler), None
    except (VolumeError, ValueError, OSError, MemoryError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, {"input": task.source, "series_uid": task.series_uid, "error": message,
                      "trace": traceback.format_exc(limit=2)}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import nibabel  # noqa: F401
        import pydicom  # noqa: F401
    except ModuleNotFoundError as exc:
        print(f"srmed: error: {exc.name} is missing: pip install 'srstream[medical]'", file=sys.stderr)
        return 1
    from srstream.engine import EngineError, Upscaler
    from training.weights import ModelLoadError

    try:
        tasks = discover(args.inputs)
        args.scale_given = args.scale is not None
        if args.spacing is not None and not args.through_plane:
            raise VolumeError("--spacing sets the slice axis's target: use it with --through-plane")
        if args.spacing is not None and args.scale_given:
            raise VolumeError("--spacing and --scale both set the target: give one")
        if args.self_supervised not in ("auto", "off"):
            try:
                seconds = float(args.self_supervised)
            except ValueError:
                seconds = math.nan
            if not (math.isfinite(seconds) and seconds >= 0):
                raise VolumeError(f"--self-supervised {args.self_supervised!r}: SECONDS, auto or off")
        for name in ("spacing", "slice_thickness", "scale"):
            value = getattr(args, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise VolumeError(f"--{name.replace('_', '-')} {value:g}: must be a positive number")
        if args.scale is None:
            args.scale = 4.0 if args.through_plane else 2.0
        if not args.through_plane and args.scale != int(args.scale):
            raise VolumeError(f"in-plane --scale {args.scale:g}: the models are x2 and x4")
        args.model = args.model or default_model(args.scale, args.through_plane)  # also what Ray workers load
        upscaler = Upscaler(args.model, backend=args.backend, batch_size=args.batch, tta=args.tta,
                            precision=args.precision)
        if upscaler.spec.descriptor.through_plane and not args.through_plane:
            raise VolumeError(f"model {upscaler.spec.name} restores thick slices: use it with --through-plane")
        if not args.through_plane and upscaler.scale != args.scale:
            raise VolumeError(f"model {upscaler.spec.name} is x{upscaler.scale}, asked for --scale {args.scale:g}")
    except (VolumeError, ModelLoadError, EngineError) as exc:
        print(f"srmed: error: {exc}", file=sys.stderr)
        return 1
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    failed, done, skipped = [], [], []
    todo = []
    for task in tasks:
        if (out_dir / f"{task.name}.json").exists() and not args.overwrite:
            skipped.append(task.name)
        else:
            todo.append(task)
    if args.ray is not None and todo:
        try:
            # Workers load the model themselves; they show no bars of their own.
            worker_args = argparse.Namespace(**{**vars(args), "quiet": True})
            outcomes = run_as_ray_tasks(run_volume, todo, args.ray, unit="volume", progress=not args.quiet,
                                        extra=(worker_args,))
        except RayUnavailable as exc:
            print(f"srmed: error: {exc}", file=sys.stderr)
            return 1
    else:
        bar = tqdm(todo, desc="volumes", unit="vol", disable=args.quiet or len(todo) < 2)
        outcomes = (run_volume(task, args, upscaler) for task in bar)
    for task, (report, failure) in zip(todo, outcomes):
        if failure is not None:
            print(f"srmed: error: {failure['error']}", file=sys.stderr)
            failed.append(failure)
            continue
        # Written last, by the driver: a report marks the volume finished, so a rerun skips it.
        (out_dir / f"{task.name}.json").write_text(json.dumps(report, indent=2) + "\n")
        done.append(report)
    summary = {"done": len(done), "skipped": len(skipped), "failed": len(failed),
               "failures": [{k: v for k, v in f.items() if k != "trace"} for f in failed]}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if not args.quiet:
        print(f"srmed: {len(done)} upscaled, {len(skipped)} already done, {len(failed)} failed -> {out_dir}",
              file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
