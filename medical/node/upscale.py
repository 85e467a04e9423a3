"""One received series upscaled exactly as `srmed upscale FOLDER --format dicom` would: the same discovery, plan,
engine run and derived-series writer (medical.run), into the job's own folder. A time series comes out as one
derived series with every volume upscaled."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from medical.volume import VolumeError

if TYPE_CHECKING:
    from medical.job import VolumeJob
    from medical.model_choice import Engines


def series_job(job: VolumeJob, output: Path) -> VolumeJob:
    """The node's request for one series: DICOM output into `output`, here (no Ray), quietly."""
    return job.with_(output=output, format="dicom", ray=None, overwrite=True, preview=False, quiet=True)


def rule_job(job: VolumeJob, options: dict[str, object]) -> VolumeJob:
    """The node's request with a routing rule's options over it: a rule's target replaces the command line's, and
    a rule's target spacing without a mode means through-plane."""
    if "scale" in options or "spacing" in options:
        job = job.with_(scale=None, spacing=None)
    if "spacing" in options and "mode" not in options:
        job = job.with_(mode="through-plane")
    return job.with_(**options) if options else job


def upscale_series(folder: Path, job: VolumeJob, engines: Engines) -> tuple[Path, dict]:
    """Upscale the one series in `folder`/in into `folder`/out: the derived series' folder and its report.
    VolumeError (one line) if it cannot be done."""
    from medical.discover import discover
    from medical.report import write_report
    from medical.run import run_volume

    tasks = discover([str(folder / "in")])
    if len(tasks) != 1:
        raise VolumeError(f"{folder / 'in'}: {len(tasks)} series where one was received")
    out = folder / "out"
    out.mkdir(exist_ok=True)
    report, failed = run_volume(tasks[0], series_job(job, out), engines)
    if failed is not None:
        raise VolumeError(failed["error"])
    assert report is not None, "run_volume gives a report or a failure"
    write_report(out, tasks[0], report)  # beside the series, as srmed upscale leaves it
    return Path(report["output"]), report
