"""A time series through the DICOM node's job against its volumes one by one, as JSON: wall time and peak memory.

    python benchmarks/time_series.py tests/data/dicom/ge_epi [--model MODEL] [--out benchmarks/results/...json]

The series (a folder of one multi-volume DICOM series) is upscaled as `srmed serve` upscales a received series
(`medical.node.upscale.upscale_series`, its default plan), once whole and once as as many single-volume series, each
volume's files in a folder of its own, one after another with the engine kept loaded (as the node keeps it). Each
case runs in a fresh process; its time excludes loading the model, its peak resident memory (ru_maxrss) includes
everything.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from report import emit


def _jobs(series: Path, work: Path, split: bool) -> list[Path]:
    """Job folders (JOB/in) holding the whole series, or one volume each."""
    from medical.dicom_read import SeriesVolumes, find_series

    volumes = SeriesVolumes(find_series(series)[0])
    groups = [[s.source for v in volumes.volumes for s in v]] if not split else \
        [[s.source for s in v] for v in volumes.volumes]
    jobs = []
    for n, files in enumerate(groups):
        (work / f"job{n:03d}" / "in").mkdir(parents=True)
        for path in files:
            shutil.copy(path, work / f"job{n:03d}" / "in" / path.name)
        jobs.append(work / f"job{n:03d}")
    return jobs


def run_case(series: Path, split: bool, model: str | None) -> dict:
    """In this process: the jobs upscaled one after another as the node does; time and peak memory."""
    from medical.job import VolumeJob
    from medical.model_choice import Engines
    from medical.node.upscale import upscale_series

    with tempfile.TemporaryDirectory() as tmp:
        jobs = _jobs(series, Path(tmp), split)
        job = VolumeJob(model=model, backend="cpu", quiet=True)
        engines = Engines(job)
        started = time.perf_counter()
        reports = [upscale_series(folder, job, engines)[1] for folder in jobs]
        seconds = time.perf_counter() - started
    return {"jobs": len(jobs), "seconds": round(seconds, 2), "peak_rss_mib": round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "model": reports[0]["model"],
        "mode": reports[0]["mode"], "output_shape": reports[0]["output_shape"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("series", type=Path)
    parser.add_argument("--model", help="default: the node's own choice, by the voxels")
    parser.add_argument("--case", choices=("whole", "split"), help=argparse.SUPPRESS)  # one case, in a child
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args.series, args.case == "split", args.model)))
        return 0
    cases = {}
    for case in ("whole", "split"):
        child = [sys.executable, __file__, str(args.series), "--case", case, *(["--model", args.model] * bool(
            args.model))]
        cases[case] = json.loads(subprocess.run(child, check=True, capture_output=True, text=True).stdout)
    report = {"command": shlex.join(["python", "benchmarks/time_series.py", *(sys.argv[1:] if argv is None
                                                                               else argv)]),
              "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores, CPU",
              "series": args.series.name, "whole_series": cases["whole"], "volume_by_volume": cases["split"],
              "time_ratio": round(cases["whole"]["seconds"] / cases["split"]["seconds"], 3)}
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
