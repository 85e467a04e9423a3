"""Many videos: a local process pool, or Ray tasks on a cluster (one GPU per task where the cluster has GPUs)."""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from srstream.output_size import OutputSize
from srstream.ray_tasks import run_as_ray_tasks
from srstream.video.sink import EncodeOptions
from srstream.video.source import VIDEO_SUFFIXES


@dataclass(frozen=True)
class Job:
    source: str
    output: str
    model: str
    backend: str
    batch: int
    options: EncodeOptions
    overwrite: bool
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


def run_job(job: Job) -> dict:
    """Upscale one video; never raises: failures come back as {'error': ...} so the batch goes on."""
    from srstream.engine import Upscaler
    from srstream.video.pipeline import upscale_video

    try:
        upscaler = Upscaler(job.model, backend=job.backend, batch_size=job.batch, tta=job.tta,
                            precision=job.precision)
        stats = upscale_video(job.source, job.output, upscaler, job.options, batch=job.batch,
                              overwrite=job.overwrite, progress=False, output_size=job.output_size)
        return stats.to_dict()
    except Exception as exc:  # reported per file; the other files still run
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"input": job.source, "output": job.output, "error": message,
                "trace": traceback.format_exc(limit=3)}


def run_batch(jobs: list[Job], workers: int = 1, ray_address: str | None = None,
              progress: bool = True) -> list[dict]:
    """Run `jobs` in a local pool of `workers` processes, or as Ray tasks when `ray_address` is given
    ('auto' joins a running cluster, 'local' starts one here)."""
    if ray_address is not None:
        return run_as_ray_tasks(run_job, jobs, ray_address, unit="video", progress=progress)
    results: list[dict] = []
    # spawn, not fork: a forked child of a process that has run torch/OpenMP threads can hang before it starts.
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=context) as pool:
        futures = [pool.submit(run_job, job) for job in jobs]
        for future in tqdm(cf.as_completed(futures), total=len(futures), unit="video", disable=not progress):
            results.append(future.result())
    order = {job.source: i for i, job in enumerate(jobs)}
    return sorted(results, key=lambda r: order.get(r["input"], 0))
