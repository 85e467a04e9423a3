"""`srmed bids BIDS_DIR OUTPUT_DIR participant [--participant-label L...] [--suffix T1w...] [-m MODEL] ...`.

A BIDS app: the images of BIDS_DIR that the entity options select (default: every participant's T1w, T2w, PDw,
T2starw, FLAIR, inplaneT1/T2 and angio images; `--suffix bold dwi` takes time series, every volume upscaled, with
their .bval/.bvec carried) are upscaled by srmed's own per-volume run, with `srmed upscale`'s options, into
OUTPUT_DIR, a BIDS derivatives dataset (conventionally BIDS_DIR/derivatives/srstream). Thick slices are refined
through-plane by default; each image's slice thickness comes from its sidecar's SliceThickness (NIfTI has no such
field). Finished images are skipped on a rerun, a failed one does not stop the
others, and the exit status is 1 if any failed. The `group` level has nothing to do: it checks BIDS_DIR and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from medical.bids.dataset import (
    ANAT_SUFFIXES,
    BidsTask,
    gradient_files,
    metadata,
    open_dataset,
    select,
    sidecars,
)
from medical.bids.derivatives import (
    check_output,
    derivative_stem,
    finish_sidecar,
    write_dataset,
)
from medical.report import report_path
from medical.volume import VolumeError
from training.errors import SrstreamError

if TYPE_CHECKING:
    from bids import BIDSLayout
    from bids.layout import BIDSFile


def add_parser(sub: argparse._SubParsersAction) -> None:
    """`srmed bids`: the BIDS app's arguments, its entity filters and `srmed upscale`'s options."""
    from medical.commands import add_upscale_options

    p = sub.add_parser(
        "bids",
        help="BIDS app: upscale a BIDS dataset's anatomical images into a derivatives dataset",
        description=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bids_dir", metavar="BIDS_DIR", help="the BIDS dataset (its root: dataset_description.json)")
    p.add_argument(
        "output_dir", metavar="OUTPUT_DIR", help="the derivatives dataset to write, e.g. BIDS_DIR/derivatives/srstream"
    )
    p.add_argument(
        "analysis_level", choices=("participant", "group"), help="participant: upscale; group: nothing to do"
    )
    p.add_argument(
        "--participant-label",
        "--participant_label",
        nargs="+",
        metavar="LABEL",
        help="participants to do (01 or sub-01; default: all)",
    )
    p.add_argument("--session-label", "--session_label", nargs="+", metavar="LABEL", help="sessions (default: all)")
    p.add_argument("--suffix", nargs="+", metavar="SUFFIX", help=f"image suffixes (default: {' '.join(ANAT_SUFFIXES)})")
    p.add_argument("--acquisition", nargs="+", metavar="LABEL", help="acq- labels (default: all)")
    p.add_argument(
        "--run",
        nargs="+",
        type=int,
        metavar="N",
        dest="runs",  # `run` is the subcommand's function
        help="run- indices (default: all)",
    )
    add_upscale_options(p, inputs=False)
    p.set_defaults(run=run)


def _tasks(layout: BIDSLayout, images: list[BIDSFile], out_dir: Path) -> list[BidsTask]:
    """One task per image, named by its place in the derivatives dataset (whose folders are made here)."""
    tasks = []
    for image in images:
        source = Path(os.path.relpath(image.path, layout.root)).as_posix()
        task = BidsTask(
            image.path, None, derivative_stem(source), "nifti", sidecars(layout, image), gradient_files(layout, image)
        )
        try:
            (out_dir / task.name).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise VolumeError(f"{(out_dir / task.name).parent}: cannot create ({exc.strerror or exc})") from None
        tasks.append(task)
    return tasks


def _finish(tasks: list[BidsTask], root: Path, out_dir: Path) -> int:
    """Make the report of every finished image its BIDS sidecar; how many could not be (each said on stderr)."""
    failed = 0
    for task in tasks:
        report = report_path(out_dir, task)  # srmed's report is where BIDS wants the sidecar
        if not report.exists():  # failed, reported already
            continue
        try:
            finish_sidecar(report, metadata(task.sidecars), Path(os.path.relpath(task.source, root)).as_posix())
        except VolumeError as exc:
            print(f"srmed: error: {exc}", file=sys.stderr)
            failed += 1
    return failed


def run(args: argparse.Namespace) -> int:
    """`srmed bids`: every selected image into the derivatives dataset; 1 if any failed (or none could start)."""
    try:
        import bids  # noqa: F401
    except ModuleNotFoundError:
        print("srmed: error: pybids is missing: pip install 'srstream[medical]'", file=sys.stderr)
        return 1
    from medical.commands import check_options
    from medical.model_choice import Engines
    from medical.run import run_all

    out_dir = Path(args.output_dir)
    try:
        layout = open_dataset(args.bids_dir)
        root = Path(layout.root)
        if args.analysis_level == "group":
            print(
                "srmed: group level: nothing to do (srmed bids upscales each participant's images at "
                "participant level)",
                file=sys.stderr,
            )
            return 0
        images = select(layout, args.participant_label, args.session_label, args.suffix, args.acquisition, args.runs)
        if args.format not in ("same", "nifti"):
            raise VolumeError(f"--format {args.format}: a BIDS derivatives dataset holds NIfTI images")
        job = check_options(args, output=out_dir)
        check_output(out_dir, root)
        engines = Engines(job)
        if job.model:  # a model that cannot load stops the run before any image
            engines.get(job.model)
        write_dataset(out_dir, root)
        tasks = _tasks(layout, images, out_dir)
        done, skipped, failed = run_all(tasks, job, engines)
    except SrstreamError as exc:
        print(f"srmed: error: {exc}", file=sys.stderr)
        return 1
    unfinished = _finish(tasks, root, out_dir)
    if not args.quiet:
        print(
            f"srmed: {done} upscaled, {skipped} already done, {len(failed) + unfinished} failed -> {out_dir}",
            file=sys.stderr,
        )
    return 1 if failed or unfinished else 0
