"""Many videos: in this process through one engine (a few at a time, batched together by the scheduler), or as Ray
tasks on a cluster (one GPU per task where the cluster has GPUs)."""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from srstream.output_size import OutputSize
from srstream.ray_tasks import run_as_ray_tasks
from srstream.video.settings import EncodeOptions, Settings
from srstream.video.source import VIDEO_SUFFIXES


@dataclass(frozen=True, kw_only=True)
class VideoJob:
    """One video of a batch: what a worker (or a Ray task) needs to upscale it on its own."""

    source: str
    output: str
    model: str
    backend: str
    batch: int = Settings.batch
    options: EncodeOptions = field(default_factory=EncodeOptions)
    overwrite: bool = False
    tta: bool = False
    precision: str = "auto"
    output_size: OutputSize | None = None


def collect_inputs(items: Iterable[str]) -> list[Path]:
    """Video files from folders (sorted), list files (.txt, one path per line) and plain paths."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        elif path.suffix.lower() == ".txt" and path.is_file():
            found += [Path(line.strip()) for line in path.read_text().splitlines() if line.strip()]
        else:
            found.append(path)
    return found


def run_job(job: VideoJob) -> dict:
    """Upscale one video; never raises: failures come back as {'error': ...} so the batch goes on."""
    from srstream.engine import Upscaler
    from srstream.video.pipeline import upscale_video

    try:
        upscaler = Upscaler(job.model, backend=job.backend, batch_size=job.batch, tta=job.tta, precision=job.precision)
        settings = Settings(options=job.options, batch=job.batch, output_size=job.output_size)
        stats = upscale_video(job.source, job.output, upscaler, settings, overwrite=job.overwrite, progress=False)
        return stats.to_dict()
    except Exception as exc:  # noqa: BLE001 - reported per file; the other files still run
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"input": job.source, "output": job.output, "error": message, "trace": traceback.format_exc(limit=3)}


def run_batch(
    jobs: list[VideoJob], workers: int = 1, ray_address: str | None = None, progress: bool = True
) -> list[dict]:
    """Run `jobs`: `workers` videos at a time in this process, all through one engine (the same path as
    `srstream upscale IN IN ... OUTDIR`), or as Ray tasks when `ray_address` is given ('auto' joins a running
    cluster, 'local' starts one here). Jobs must share model, backend and settings."""
    if ray_address is not None:
        return run_as_ray_tasks(run_job, jobs, ray_address, unit="video", progress=progress)
    from srstream.engine import Upscaler
    from srstream.video.pipeline import check_output, upscale_many

    refused = []
    for job in jobs:  # an existing output is that file's error; the others still run
        try:
            check_output(job.source, job.output, job.overwrite)
        except (FileExistsError, ValueError) as exc:
            refused.append({"input": job.source, "output": job.output, "error": str(exc)})
    order = {job.source: i for i, job in enumerate(jobs)}
    refused_inputs = {r["input"] for r in refused}
    jobs = [j for j in jobs if j.source not in refused_inputs]
    if not jobs:
        return refused
    first = jobs[0]
    try:
        upscaler = Upscaler(
            first.model, backend=first.backend, batch_size=first.batch, tta=first.tta, precision=first.precision
        )
    except Exception as exc:  # noqa: BLE001 - no engine: every video fails the same way
        return [{"input": j.source, "output": j.output, "error": str(exc).splitlines()[0]} for j in jobs]
    settings = Settings(options=first.options, batch=first.batch, output_size=first.output_size, live=False)
    stats = upscale_many(
        [(j.source, j.output) for j in jobs],
        upscaler,
        settings,
        progress=progress,
        overwrite=first.overwrite,
        concurrency=max(1, workers),
    )
    results = refused + [s.to_dict() for s in stats]
    started = {r["input"] for r in results}
    results += [
        {"input": j.source, "output": j.output, "error": f"{j.source}: not started (interrupted)"}
        for j in jobs
        if j.source not in started
    ]
    return sorted(results, key=lambda r: order.get(r["input"], 0))
