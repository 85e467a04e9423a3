"""`srmed upscale IN... -o OUTDIR --scale 2 [--through-plane] [--format nifti|dicom|same]`: batch SR of volumes.

IN is a NIfTI file or a folder of DICOM files (every series in it is a volume). Each volume gets OUTDIR/NAME.nii.gz
or OUTDIR/NAME/ (a DICOM series) and OUTDIR/NAME.json (shapes, spacing, model, backend, time). A volume whose
report already exists is skipped; a volume that fails is reported and the others go on; the exit status is 1 if
any failed.

This module only parses and dispatches: `medical.discover` finds the volumes (through the formats in
`medical.formats`), `medical.engine` picks the model and backend, `medical.plan` works out each volume's job,
`medical.run` does it (here or on Ray) and `medical.report` writes the JSON. Other subcommands (the DICOM node,
the BIDS app) live in their own modules, listed in SUBCOMMANDS: each has `add_parser(sub)` and `run(args) -> int`.
"""
from __future__ import annotations

import argparse
import importlib
import math
import sys
from pathlib import Path

from medical import formats, pacs_pull
from medical.volume import VolumeError
from srstream import backends
from srstream.backends.precision import PRECISIONS
from srstream.ray_tasks import RayUnavailable


SUBCOMMANDS: tuple[str, ...] = ("medical.bids.app",  # modules beside `upscale`: add_parser(sub), run(args) -> int
                                "medical.node.command")


def build_parser() -> argparse.ArgumentParser:
    """srmed's options."""
    from srstream import __version__

    parser = argparse.ArgumentParser(prog="srmed", description="Super-resolution of MRI/CT volumes")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_upscale_options(sub.add_parser("upscale", help="upscale NIfTI files and DICOM series into OUTDIR"))
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def add_upscale_options(up: argparse.ArgumentParser, inputs: bool = True) -> None:
    """The options of `srmed upscale`; without `inputs` (IN... and -o), for subcommands that find their own."""
    if inputs:
        up.add_argument("inputs", nargs="*", metavar="IN", help=".nii/.nii.gz files or folders of DICOM files")
        up.add_argument("-o", "--output", required=True, metavar="OUTDIR")
        pacs_pull.add_options(up)  # --from-pacs, --send-to: IN fetched from a PACS, results stored back
    up.add_argument("--scale", type=float, default=None,
                    help="in-plane: 2 or 4 (picks mri-xN; default 2); through-plane: the factor, any ratio "
                    "(shorthand for --spacing SPACING/N)")
    up.add_argument("-m", "--model", help="model name or path (default: mri-x<scale> in-plane; mri-thick, "
                    "for any ratio, with --through-plane)")
    up.add_argument("--backend", default="auto", choices=backends.NAMES)
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
    up.add_argument("--format", default="same", choices=(*formats.output_names(), "same"))
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


def _check_numbers(args: argparse.Namespace) -> None:
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


def check_options(args: argparse.Namespace) -> None:
    """Refuse contradictory or impossible options, then fill in the defaults they imply (scale, model)."""
    from medical.engine import default_model

    args.scale_given = args.scale is not None
    if args.spacing is not None and not args.through_plane:
        raise VolumeError("--spacing sets the slice axis's target: use it with --through-plane")
    if args.spacing is not None and args.scale_given:
        raise VolumeError("--spacing and --scale both set the target: give one")
    _check_numbers(args)
    if args.scale is None:
        args.scale = 4.0 if args.through_plane else 2.0
    if not args.through_plane and args.scale != int(args.scale):
        raise VolumeError(f"in-plane --scale {args.scale:g}: the models are x2 and x4")
    args.model = args.model or default_model(args.scale, args.through_plane)  # also what Ray workers load


def run_command(argv: list[str] | None = None) -> int:
    """`srmed`: parse, check, then run every volume; 1 if any failed (or nothing could start), else 0."""
    args = build_parser().parse_args(argv)
    try:
        import nibabel  # noqa: F401
        import pydicom  # noqa: F401
    except ModuleNotFoundError as exc:
        print(f"srmed: error: {exc.name} is missing: pip install 'srstream[medical]'", file=sys.stderr)
        return 1
    if args.command != "upscale":
        return args.run(args)
    return upscale_command(args)


def upscale_command(args: argparse.Namespace) -> int:
    """`srmed upscale`: every volume of args.inputs into args.output; 1 if any failed, else 0."""
    from medical.discover import discover
    from medical.engine import build_upscaler, check_model
    from medical.run import run_all
    from srstream.engine import EngineError
    from training.weights import ModelLoadError

    try:
        pacs_pull.prepare(args)  # with --from-pacs: fetches the input into OUTDIR/.pacs/
        tasks = discover(args.inputs)
        check_options(args)
        upscaler = build_upscaler(args)
        check_model(upscaler, args)
        done, skipped, failed = run_all(tasks, args, upscaler)
        pacs_pull.send_back(args, tasks)  # with --send-to: each derived series stored there
    except (VolumeError, ModelLoadError, EngineError, RayUnavailable) as exc:
        print(f"srmed: error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"srmed: {done} upscaled, {skipped} already done, {len(failed)} failed -> {Path(args.output)}",
              file=sys.stderr)
    return 1 if failed else 0
