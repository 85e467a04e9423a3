"""Running `srmed` on its inputs: one input (a volume or a time series) read, planned, tuned, upscaled, written
and reported; all of them, here or as Ray tasks, finished ones skipped, failed ones reported while the others go
on."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from medical import formats
from medical.discover import Task
from medical.fit_check import check_fits
from medical.gradients import GRADIENTS, carry, load
from medical.model_choice import Engines
from medical.plan import Plan, axis_factors, make_plan
from medical.report import (
    failure,
    report_path,
    volume_report,
    write_report,
    write_summary,
)
from medical.volume import Volume, VolumeError
from srstream.ray_tasks import run_as_ray_tasks

if TYPE_CHECKING:
    from medical.formats import VolumeSource
    from medical.job import VolumeJob
    from srstream.engine import Upscaler

log = logging.getLogger(__name__)


def _check_header_fits(task: Task, job: VolumeJob) -> None:
    """Where the header alone says how big the output is (in-plane, the default for all but thick slices): fail
    before reading."""
    shape = formats.by_name(task.format).header_shape(Path(task.source)) if job.mode != "through-plane" else None
    if shape is not None:
        check_fits(task.source, shape, axis_factors(2 if job.axis is None else job.axis, job.scale or 2, False))


def _upscaled(volume: Volume, plan: Plan, upscaler: Upscaler, progress: bool) -> Volume:
    from medical.slicewise import upscale_in_plane, upscale_through_plane

    if plan.through_plane:
        return upscale_through_plane(volume, upscaler, axis=plan.axis, progress=progress, spacing=plan.target_spacing)
    return upscale_in_plane(volume, upscaler, axis=plan.axis, progress=progress)


class Upscaled:
    """The (upscaled, source) pairs of one input's volumes under one plan, made one at a time as the writer takes
    them, so that a time series is never in memory whole; the first result is kept for the report."""

    def __init__(
        self, source: VolumeSource, indices: list[int], first: Volume, plan: Plan, upscaler: Upscaler, progress: bool
    ) -> None:
        self.source, self.indices, self.first, self.plan, self.upscaler = source, indices, first, plan, upscaler
        self.progress = progress
        self.first_result: Volume | None = None

    def __iter__(self) -> Iterator[tuple[Volume, Volume]]:
        bar = tqdm(
            self.indices, desc="volumes", unit="vol", leave=False, disable=not self.progress or len(self.indices) < 2
        )
        for n, index in enumerate(bar):
            volume = self.first if n == 0 else self.source.read(index)
            if volume.shape != self.first.shape or not np.allclose(volume.affine, self.first.affine, atol=1e-4):
                raise VolumeError(
                    f"{volume.source}: volume {index} lies on another grid than volume "
                    f"{self.indices[0]}; a series' volumes must share one"
                )
            result = _upscaled(volume, self.plan, self.upscaler, self.progress and len(self.indices) < 2)
            if n == 0:
                self.first_result = result
            yield result, volume


def _indices(source: VolumeSource, job: VolumeJob, where: str) -> list[int]:
    """The volumes to do: the one --volume names, else all of them."""
    if job.volume is None:
        return list(range(source.count))
    if not 0 <= job.volume < source.count:
        raise VolumeError(f"{where}: volume {job.volume} does not exist (0..{source.count - 1})")
    return [job.volume]


def process(task: Task, job: VolumeJob, engines: Engines) -> dict[str, Any]:
    """Read, upscale, write and report one input: a volume, or every volume of a time series by one plan."""
    from medical.tuning import tuned

    started = time.perf_counter()
    _check_header_fits(task, job)
    source = task.open()
    indices = _indices(source, job, task.source)
    first = source.read(indices[0])
    output_format = formats.writer(job.format, formats.by_name(task.format)).name
    # A diffusion table that does not fit the series fails it here, before anything is written.
    gradients = load(task.gradients(), source.count) if output_format == "nifti" else []
    plan, upscaler = make_plan(first, job, engines, output_format)
    log.info("srmed: %s: %s, %s", task.name, plan.mode, plan.reason)
    check_fits(task.source, first.shape, plan.factors)
    tuning = None
    if plan.tuning is not None:  # on the first volume; the others share its plan and its tuned model
        upscaler, tuning = tuned(upscaler, first, plan)
    count = len(indices) if job.volume is None and source.count > 1 else None
    pairs = Upscaled(source, indices, first, plan, upscaler, progress=not job.quiet)
    writer = formats.by_name(plan.output_format)
    target = job.output / f"{task.name}{writer.suffix}"
    try:
        clipped = writer.write(pairs, target, plan.describe(upscaler.spec.descriptor.name), plan.target_spacing, count)
    except OSError as exc:  # a full disk, say: written under a temporary name, so nothing is left half-written
        raise VolumeError(f"{target}: cannot write ({exc.strerror or exc})") from None
    result = pairs.first_result
    assert result is not None, "the writer took every pair"
    report = volume_report(
        task, plan, first, result, upscaler, target, clipped, tuning, time.perf_counter() - started, count
    )
    if gradients:
        report["gradients"] = {"files": carry(gradients, job.output / task.name, job.volume), "vectors": GRADIENTS}
    if job.preview:
        from medical.preview import write_preview

        report["preview"] = str(write_preview(first, result, job.output / f"{task.name}_preview.png", plan.axis))
    return report


def run_volume(task: Task, job: VolumeJob, engines: Engines | None = None) -> tuple[dict | None, dict | None]:
    """(report, None) for an input done, (None, failure) for one that failed; builds the engines if not given."""
    try:
        if engines is None:  # a Ray worker: its own engines, on its own GPU if it was given one
            engines = Engines(job)
        return process(task, job, engines), None
    except (VolumeError, ValueError, OSError, MemoryError) as exc:
        return None, failure(task, exc)


def _outcomes(todo: list[Task], job: VolumeJob, engines: Engines) -> Iterable[tuple[dict | None, dict | None]]:
    """(report, failure) per input to do, in order: as Ray tasks with --ray, else one after another here."""
    if job.ray is not None and todo:
        # Workers load the models themselves; they show no bars of their own.
        return run_as_ray_tasks(
            run_volume, todo, job.ray, unit="volume", progress=not job.quiet, extra=(job.with_(quiet=True),)
        )
    bar = tqdm(todo, desc="inputs", unit="input", disable=job.quiet or len(todo) < 2)
    return (run_volume(task, job, engines) for task in bar)


def run_all(tasks: Sequence[Task], job: VolumeJob, engines: Engines) -> tuple[int, int, list[dict]]:
    """Every task not already reported; writes each report and the summary. (done, skipped, failures)."""
    out_dir = job.output
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [t for t in tasks if job.overwrite or not report_path(out_dir, t).exists()]
    skipped = len(tasks) - len(todo)
    done, failed = 0, []
    for task, (report, failed_one) in zip(todo, _outcomes(todo, job, engines)):
        if failed_one is None:
            assert report is not None, "run_volume gives a report or a failure"
            failed_one = _reported(out_dir, task, report)
        if failed_one is not None:
            log.error("srmed: error: %s", failed_one["error"])
            failed.append(failed_one)
            continue
        done += 1
    try:
        write_summary(out_dir, done, skipped, failed)
    except OSError as exc:  # the volumes' own reports say what was done
        log.error("srmed: error: %s: cannot write (%s)", out_dir / "summary.json", exc.strerror or exc)
    return done, skipped, failed


def _reported(out_dir: Path, task: Task, report: dict[str, Any]) -> dict | None:
    """Write a finished volume's report (which marks it done); a failure record if it cannot be written."""
    try:
        write_report(out_dir, task, report)
        return None
    except OSError as exc:  # the volume stays unmarked: a rerun does it again
        return failure(task, VolumeError(f"{report_path(out_dir, task)}: cannot write ({exc.strerror or exc})"))
