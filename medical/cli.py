"""`srmed upscale IN... -o OUTDIR --scale 2 [--through-plane] [--format nifti|dicom|same]`: batch SR of volumes.

IN is a NIfTI file or a folder of DICOM files (every series in it is a volume). Each volume gets OUTDIR/NAME.nii.gz
or OUTDIR/NAME/ (a DICOM series) and OUTDIR/NAME.json (shapes, spacing, model, backend, time). A volume whose
report already exists is skipped; a volume that fails is reported and the others go on; the exit status is 1 if
any failed.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from medical.memory import check_fits
from medical.volume import Volume, VolumeError
from srstream.backends.precision import PRECISIONS
from srstream.ray_tasks import RayUnavailable, run_as_ray_tasks


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


def default_model(scale: int, through_plane: bool) -> str:
    """mri-thick-xN for through-plane where one is shipped (trained for slab blur), else mri-xN."""
    from training.weights import shipped_models

    if through_plane and f"mri-thick-x{scale}" in shipped_models():
        return f"mri-thick-x{scale}"
    return f"mri-x{scale}"


def process(task: Task, args: argparse.Namespace, upscaler) -> dict:
    """Read, upscale, write and report one volume."""
    from medical.nifti import is_nifti, write_nifti
    from medical.slicewise import through_plane_factor, upscale_in_plane, upscale_through_plane

    started = time.perf_counter()
    factor = through_plane_factor(upscaler) if args.through_plane else upscaler.scale
    if args.through_plane:
        factors = tuple(factor if a == args.axis else 1 for a in range(3))
    else:
        factors = tuple(1 if a == args.axis else factor for a in range(3))
    if task.series_uid is None and is_nifti(task.source):  # the header alone says how big it is: fail before reading
        import nibabel as nib
        from nibabel.filebasedimages import ImageFileError

        try:
            check_fits(task.source, nib.load(task.source).shape, factors)
        except (OSError, ImageFileError):
            pass  # unreadable: the reader below says so in its own words
    volume = _read(task, args.volume)
    check_fits(task.source, volume.shape, factors)
    fmt = args.format if args.format != "same" else ("nifti" if task.series_uid is None else "dicom")
    out_dir = Path(args.output)
    method = upscale_through_plane if args.through_plane else upscale_in_plane
    tuning = None
    if args.self_supervised:
        from medical.self_supervised import fine_tune
        from srstream.engine import Upscaler

        spec, tuning = fine_tune(upscaler.spec, volume, axis=args.axis, seconds=args.self_supervised)
        upscaler = Upscaler(spec, backend=upscaler.backend_name, batch_size=upscaler.batch_size,
                            tta=upscaler.tta, precision=upscaler.precision)
    result = method(volume, upscaler, axis=args.axis, progress=not args.quiet)
    description = (f"srstream {upscaler.spec.name} x{factor} "
                   f"{'through-plane' if args.through_plane else 'in-plane'} axis {args.axis}")
    if fmt == "nifti":
        target = out_dir / f"{task.name}.nii.gz"
        clipped = write_nifti(result, target, description)
    else:
        from medical.dicom_write import write_dicom_series

        target = out_dir / task.name
        clipped = write_dicom_series(result, volume, target, description)
    report = {"input": task.source, "series_uid": task.series_uid, "output": str(target), "format": fmt,
              "input_shape": list(volume.shape), "output_shape": list(result.shape),
              "input_spacing_mm": [round(v, 6) for v in volume.spacing],
              "output_spacing_mm": [round(v, 6) for v in result.spacing],
              "mode": "through-plane" if args.through_plane else "in-plane", "axis": args.axis,
              "model": upscaler.spec.name, "scale": factor, "backend": upscaler.backend_name,
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
    up.add_argument("--scale", type=int, default=2, help="2 or 4 (picks mri-xN unless --model is given)")
    up.add_argument("-m", "--model", help="model name or path (default mri-x<scale>; "
                    "mri-thick-x<scale> with --through-plane where shipped)")
    up.add_argument("--backend", default="auto")
    up.add_argument("--precision", default="auto", choices=PRECISIONS,
                    help="number format: auto (default) is fp16 on CUDA, bf16 on CPUs with native bf16, else fp32")
    up.add_argument("--through-plane", action="store_true", help="upscale only the slice axis (thick slices)")
    up.add_argument("--axis", type=int, default=2, choices=(0, 1, 2), help="slice axis (default 2)")
    up.add_argument("--format", default="same", choices=("nifti", "dicom", "same"))
    up.add_argument("--volume", type=int, help="which volume of a 4-D input / time series")
    up.add_argument("--self-supervised", type=float, metavar="SECONDS",
                    help="first fine-tune the model on the volume's own sharp slices for this long (SMORE-style)")
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
    from medical.slicewise import slab_thickness, through_plane_factor
    from srstream.engine import EngineError, Upscaler
    from training.weights import ModelLoadError

    try:
        tasks = discover(args.inputs)
        args.model = args.model or default_model(args.scale, args.through_plane)  # also what Ray workers load
        upscaler = Upscaler(args.model, backend=args.backend, batch_size=args.batch, tta=args.tta,
                                precision=args.precision)
        factor = through_plane_factor(upscaler) if args.through_plane else upscaler.scale
        if slab_thickness(upscaler.spec) and not args.through_plane:
            raise VolumeError(f"model {upscaler.spec.name} restores thick slices: use it with --through-plane")
        if factor != args.scale:
            raise VolumeError(f"model {upscaler.spec.name} is x{factor}, asked for --scale {args.scale}")
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
