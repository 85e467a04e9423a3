"""Running `srmed` on its volumes: one volume read, planned, tuned, upscaled, written and reported; all of them,
here or as Ray tasks, with finished ones skipped and failed ones reported while the others go on."""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from medical import formats
from medical.discover import Task
from medical.engine import build_upscaler
from medical.memory import check_fits
from medical.plan import Plan, axis_factors, make_plan
from medical.report import failure, report_path, volume_report, write_report, write_summary
from medical.volume import Volume, VolumeError
from srstream.ray_tasks import run_as_ray_tasks

if TYPE_CHECKING:
    from srstream.engine import Upscaler


def _check_header_fits(task: Task, args: argparse.Namespace, upscaler: Upscaler) -> None:
    """In-plane, where the header alone says how big the output is: fail before reading."""
    shape = None if args.through_plane else formats.by_name(task.format).header_shape(Path(task.source))
    if shape is not None:
        check_fits(task.source, shape, axis_factors(args.axis, upscaler.scale, through_plane=False))


def _upscaled(volume: Volume, plan: Plan, upscaler: Upscaler, progress: bool) -> Volume:
    from medical.slicewise import upscale_in_plane, upscale_through_plane

    if plan.through_plane:
        return upscale_through_plane(volume, upscaler, axis=plan.axis, progress=progress,
                                     spacing=plan.target_spacing)
    return upscale_in_plane(volume, upscaler, axis=plan.axis, progress=progress)


def _written(result: Volume, volume: Volume, plan: Plan, task: Task, out_dir: Path,
             model: str) -> tuple[Path, int]:
    """The output written in the plan's format; its path and the voxels clipped to the stored type."""
    writer = formats.by_name(plan.output_format)
    target = out_dir / f"{task.name}{writer.suffix}"
    try:
        return target, writer.write(result, volume, target, plan.describe(model), plan.target_spacing)
    except OSError as exc:  # a full disk, say: written under a temporary name, so nothing is left half-written
        raise VolumeError(f"{target}: cannot write ({exc.strerror or exc})") from None


def process(task: Task, args: argparse.Namespace, upscaler: Upscaler) -> dict[str, Any]:
    """Read, upscale, write and report one volume."""
    from medical.tuning import tuned

    started = time.perf_counter()
    _check_header_fits(task, args, upscaler)
    volume = task.read(args.volume)
    output_format = formats.writer(args.format, formats.by_name(task.format)).name
    plan = make_plan(volume, args, upscaler, output_format)
    check_fits(task.source, volume.shape, plan.factors)
    tuning = None
    if plan.tuning is not None:
        upscaler, tuning = tuned(upscaler, volume, plan)
    result = _upscaled(volume, plan, upscaler, progress=not args.quiet)
    out_dir = Path(args.output)
    target, clipped = _written(result, volume, plan, task, out_dir, upscaler.spec.descriptor.name)
    report = volume_report(task, plan, volume, result, upscaler, target, clipped, tuning,
                           time.perf_counter() - started)
    if args.preview:
        from medical.preview import write_preview

        report["preview"] = str(write_preview(volume, result, out_dir / f"{task.name}_preview.png", args.axis))
    return report


def run_volume(task: Task, args: argparse.Namespace, upscaler: Upscaler | None = None,
               ) -> tuple[dict | None, dict | None]:
    """(report, None) for a volume done, (None, failure) for one that failed; builds the engine if not given."""
    try:
        if upscaler is None:  # a Ray worker: its own engine, on its own GPU if it was given one
            upscaler = build_upscaler(args)
        return process(task, args, upscaler), None
    except (VolumeError, ValueError, OSError, MemoryError) as exc:
        return None, failure(task, exc)


def _outcomes(todo: list[Task], args: argparse.Namespace,
              upscaler: Upscaler) -> Iterable[tuple[dict | None, dict | None]]:
    """(report, failure) per volume to do, in order: as Ray tasks with --ray, else one after another here."""
    if args.ray is not None and todo:
        # Workers load the model themselves; they show no bars of their own.
        worker_args = argparse.Namespace(**{**vars(args), "quiet": True})
        return run_as_ray_tasks(run_volume, todo, args.ray, unit="volume", progress=not args.quiet,
                                extra=(worker_args,))
    bar = tqdm(todo, desc="volumes", unit="vol", disable=args.quiet or len(todo) < 2)
    return (run_volume(task, args, upscaler) for task in bar)


def run_all(tasks: list[Task], args: argparse.Namespace, upscaler: Upscaler) -> tuple[int, int, list[dict]]:
    """Every task not already reported; writes each report and the summary. (done, skipped, failures)."""
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = [t for t in tasks if args.overwrite or not report_path(out_dir, t).exists()]
    skipped = len(tasks) - len(todo)
    done, failed = 0, []
    for task, (report, failed_one) in zip(todo, _outcomes(todo, args, upscaler)):
        if failed_one is None:
            failed_one = _reported(out_dir, task, report)
        if failed_one is not None:
            print(f"srmed: error: {failed_one['error']}", file=sys.stderr)
            failed.append(failed_one)
            continue
        done += 1
    try:
        write_summary(out_dir, done, skipped, failed)
    except OSError as exc:  # the volumes' own reports say what was done
        print(f"srmed: error: {out_dir / 'summary.json'}: cannot write ({exc.strerror or exc})", file=sys.stderr)
    return done, skipped, failed


def _reported(out_dir: Path, task: Task, report: dict[str, Any]) -> dict | None:
    """Write a finished volume's report (which marks it done); a failure record if it cannot be written."""
    try:
        write_report(out_dir, task, report)
        return None
    except OSError as exc:  # the volume stays unmarked: a rerun does it again
        return failure(task, VolumeError(f"{report_path(out_dir, task)}: cannot write ({exc.strerror or exc})"))
