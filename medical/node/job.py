"""One received series upscaled exactly as `srmed upscale FOLDER --format dicom` would: the same discovery, plan,
engine run and derived-series writer (medical.run), into the job's own folder."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from medical.volume import VolumeError

if TYPE_CHECKING:
    from srstream.engine import Upscaler


def job_args(args: argparse.Namespace, output: Path) -> argparse.Namespace:
    """`srmed upscale`'s options for one series: the node's, with DICOM output into `output`, here (no Ray)."""
    return argparse.Namespace(**{**vars(args), "output": str(output), "format": "dicom", "ray": None,
                                 "overwrite": True, "preview": False, "quiet": True})


def upscale_series(folder: Path, args: argparse.Namespace, upscaler: Upscaler) -> Path:
    """Upscale the one series in `folder`/in into `folder`/out; the derived series' folder. VolumeError (one
    line) if it cannot be done."""
    from medical.discover import discover
    from medical.report import write_report
    from medical.run import run_volume

    tasks = discover([str(folder / "in")])
    if len(tasks) != 1:
        raise VolumeError(f"{folder / 'in'}: {len(tasks)} series where one was received")
    out = folder / "out"
    out.mkdir(exist_ok=True)
    report, failed = run_volume(tasks[0], job_args(args, out), upscaler)
    if failed is not None:
        raise VolumeError(failed["error"])
    write_report(out, tasks[0], report)  # beside the series, as srmed upscale leaves it
    return Path(report["output"])
