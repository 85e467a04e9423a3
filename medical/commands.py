"""`srmed upscale IN... -o OUTDIR [--through-plane|--in-plane] [--scale N] [--format nifti|dicom|same]`: batch SR
of volumes.

IN is a NIfTI file (3-D, or 4-D: a time series) or a folder of DICOM files (every series in it is an input; a
time series holds several volumes). Each input gets OUTDIR/NAME.nii.gz or OUTDIR/NAME/ (a DICOM series), every
volume upscaled by the plan of the first, and OUTDIR/NAME.json (shapes, spacing, model, backend, why this way,
time). An input whose report already exists is skipped; one that fails is reported and the others go on; the exit
status is 1 if any failed.

This module only parses and dispatches: `medical.discover` finds the volumes (through the formats in
`medical.formats`), `medical.model_choice` picks the model and backend, `medical.plan` works out each volume's job,
`medical.run` does it (here or on Ray) and `medical.report` writes the JSON. Other subcommands (the DICOM node,
the BIDS app) live in their own modules, listed in SUBCOMMANDS: each has `add_parser(sub)` and `run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

from medical import formats, pacs_pull
from medical.job import VolumeJob, job_from_args
from medical.plan import THICK
from srstream import backends
from srstream.backends.precision import PRECISIONS
from training.errors import SrstreamError
from training.logs import log_to_stderr

SUBCOMMANDS: tuple[str, ...] = (
    "medical.bids.app",  # modules beside `upscale`: add_parser(sub), run(args) -> int
    "medical.node.command",
)


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
    _add_model_options(up)
    _add_way_options(up)
    _add_run_options(up)


def _add_model_options(up: argparse.ArgumentParser) -> None:
    """Which model, how much, and on what."""
    up.add_argument(
        "--scale",
        type=float,
        default=VolumeJob.scale,
        help="in-plane: 2 or 4 (picks mri-xN; default 2); through-plane: the factor, any ratio "
        "(shorthand for --spacing SPACING/N; default: to about the in-plane spacing)",
    )
    up.add_argument(
        "-m",
        "--model",
        default=VolumeJob.model,
        help="model name or path (default: by the voxels, mri-x<scale> in-plane, mri-thick through-plane)",
    )
    up.add_argument("--backend", default=VolumeJob.backend, choices=backends.NAMES)
    up.add_argument(
        "--precision",
        default=VolumeJob.precision,
        choices=PRECISIONS,
        help="number format: auto (default) is fp16 on CUDA, bf16 on CPUs with native bf16, else fp32",
    )


def _add_way_options(up: argparse.ArgumentParser) -> None:
    """Which way a volume goes, and the slice axis's geometry."""
    way = up.add_mutually_exclusive_group()
    way.add_argument(
        "--through-plane",
        action="store_true",
        help="upscale only the slice axis (default where the slices are over "
        f"{THICK:g}x the in-plane spacing, by their spacing or thickness)",
    )
    way.add_argument(
        "--in-plane",
        action="store_true",
        help="upscale each slice (default for near-isotropic voxels), even where the slices are thick",
    )
    up.add_argument(
        "--spacing",
        type=float,
        metavar="MM",
        default=VolumeJob.spacing,
        help="through-plane: the target spacing along the slice axis (any ratio to the input's)",
    )
    up.add_argument(
        "--slice-thickness",
        type=float,
        metavar="MM",
        default=VolumeJob.slice_thickness,
        help="the slices' thickness (default: DICOM's SliceThickness or BIDS's; else the spacing)",
    )
    up.add_argument(
        "--profile",
        choices=("auto", "box", "gaussian"),
        default=VolumeJob.profile,
        help="through-plane: the slice profile (FWHM = thickness) the model is tuned for with "
        "--self-supervised; auto estimates it from the volume (default)",
    )
    up.add_argument(
        "--axis",
        type=int,
        default=VolumeJob.axis,
        choices=(0, 1, 2),
        help="slice axis (default: the thick one where one axis is, else 2)",
    )


def _add_run_options(up: argparse.ArgumentParser) -> None:
    """What is read and written, tuning, batching, and where it runs."""
    up.add_argument("--format", default=VolumeJob.format, choices=(*formats.output_names(), "same"))
    up.add_argument(
        "--volume",
        type=int,
        default=VolumeJob.volume,
        help="only this volume (from 0) of a 4-D input or time series (default: every volume)",
    )
    up.add_argument(
        "--self-supervised",
        default=VolumeJob.self_supervised,
        metavar="SECONDS|auto|off",
        help="first fine-tune the model on the volume's own sharp slices, degraded by its own "
        "acquisition (SMORE/ECLARE): for SECONDS, or 'auto' (default): through-plane on a GPU with "
        "ECLARE's budget of 1M patches, not on the CPU",
    )
    up.add_argument("--batch", type=int, default=VolumeJob.batch, help="slices per engine call")
    up.add_argument(
        "--tta",
        action="store_true",
        help="self-ensemble: average the model over flips and transposes "
        "of each slice (8x the time, 4x through-plane; a little more fidelity)",
    )
    up.add_argument("--preview", action="store_true", help="write a before/after PNG montage per volume")
    up.add_argument("--overwrite", "-y", action="store_true", help="redo volumes whose report exists")
    up.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run volumes as Ray tasks: on a local Ray (no ADDRESS) or the cluster at ADDRESS",
    )
    up.add_argument("-q", "--quiet", action="store_true")


def check_options(args: argparse.Namespace, **changes) -> VolumeJob:
    """The request the options describe, with `changes`; VolumeError (one line) for contradictory or impossible
    options. A model named with -m is loaded later, by the first volume's plan (and at start by the front door)."""
    return job_from_args(args, **changes)


def run_command(argv: list[str] | None = None) -> int:
    """`srmed`: parse, check, then run every volume; 1 if any failed (or nothing could start), else 0."""
    args = build_parser().parse_args(argv)
    log_to_stderr(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO)
    try:
        import nibabel  # noqa: F401
        import pydicom  # noqa: F401
    except ModuleNotFoundError as exc:
        print(f"srmed: error: {exc.name} is missing: pip install 'srstream[medical]'", file=sys.stderr)
        return 1
    if args.command != "upscale":
        return args.run(args)
    return upscale_command(args)


def pacs_request(args: argparse.Namespace) -> pacs_pull.PacsRequest:
    """What pull mode (`medical.pacs_pull`) reads of `srmed upscale`'s options."""
    return pacs_pull.PacsRequest(
        inputs=tuple(args.inputs),
        output=Path(args.output),
        format=args.format,
        from_pacs=args.from_pacs,
        study_uid=args.study_uid,
        series_uid=args.series_uid,
        send_to=args.send_to,
        calling_ae=args.calling_ae,
    )


def upscale_command(args: argparse.Namespace) -> int:
    """`srmed upscale`: every volume of args.inputs into args.output; 1 if any failed, else 0."""
    from medical.discover import discover
    from medical.model_choice import Engines
    from medical.run import run_all

    request = pacs_request(args)
    try:
        inputs = pacs_pull.prepare(request)  # with --from-pacs: fetches the input into OUTDIR/.pacs/
        tasks = discover(inputs)
        job = check_options(args)
        engines = Engines(job)
        if job.model:  # a model that cannot load stops the run before any volume
            engines.get(job.model)
        done, skipped, failed = run_all(tasks, job, engines)
        pacs_pull.send_back(request, tasks)  # with --send-to: each derived series stored there
    except SrstreamError as exc:
        print(f"srmed: error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(
            f"srmed: {done} upscaled, {skipped} already done, {len(failed)} failed -> {Path(args.output)}",
            file=sys.stderr,
        )
    return 1 if failed else 0
