"""`srmed`'s JSON: one report per finished volume (its presence marks the volume done), and the run's summary."""

from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medical.discover import Task
from medical.plan import Plan
from medical.volume import Volume
from training.atomic import atomic_path

if TYPE_CHECKING:
    from srstream.engine import Upscaler


def report_path(out_dir: Path, task: Task) -> Path:
    """Where the report of `task` goes."""
    return out_dir / f"{task.name}.json"


def volume_report(
    task: Task,
    plan: Plan,
    volume: Volume,
    result: Volume,
    upscaler: Upscaler,
    output: Path,
    clipped: int,
    tuning: dict | None,
    seconds: float,
    count: int | None = None,
) -> dict[str, Any]:
    """The report of one input done (`volume` and `result`: its first volume; `count` of them in a time series):
    in and out, geometry, model, engine, why this way, intensities, tuning, time."""
    series = [count] if count else []
    return {
        "input": task.source,
        "series_uid": task.series_uid,
        "output": str(output),
        "format": plan.output_format,
        "volumes": count or 1,
        "volume_index": None if count else volume.meta.get("volume_index"),
        "input_shape": [*volume.shape, *series],
        "output_shape": [*result.shape, *series],
        "input_spacing_mm": [round(v, 6) for v in volume.spacing],
        "output_spacing_mm": [round(v, 6) for v in result.spacing],
        "mode": plan.mode,
        "mode_reason": plan.reason,
        "axis": plan.axis,
        "slice_axis": plan.slice_axis.report() if plan.slice_axis else None,
        "model": upscaler.spec.descriptor.name,
        "scale": plan.scale,
        "backend": upscaler.backend_name,
        "precision": upscaler.precision,
        "tta": upscaler.tta,
        "intensity_window": list(result.meta["window"]),
        "clipped_voxels": clipped,
        "self_supervised": tuning,
        "seconds": round(seconds, 2),
    }


def failure(task: Task, exc: BaseException) -> dict[str, Any]:
    """A volume that failed: which, the first line of why, and where (the trace stays out of the summary)."""
    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {
        "input": task.source,
        "series_uid": task.series_uid,
        "error": message,
        "trace": traceback.format_exc(limit=2),
    }


def write_report(out_dir: Path, task: Task, report: dict[str, Any]) -> None:
    """The volume's report, written last: it marks the volume finished, so a rerun skips it."""
    _write_json(report_path(out_dir, task), report)


def write_summary(out_dir: Path, done: int, skipped: int, failed: list[dict[str, Any]]) -> None:
    """summary.json: how many volumes were done, skipped and failed, and the failures without their traces."""
    summary = {
        "done": done,
        "skipped": skipped,
        "failed": len(failed),
        "failures": [{k: v for k, v in f.items() if k != "trace"} for f in failed],
    }
    _write_json(out_dir / "summary.json", summary)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # Atomically: a report that exists is whole (it is what marks a volume done).
    with atomic_path(path, suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n")
