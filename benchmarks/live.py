"""Live cameras on this machine, as JSON: latency (capture -> upscaled frame written, p50/p95) for 1 and 4 cameras
through one process, and 4 cameras in one process against 4 processes (throughput, peak RSS), per model.

    python benchmarks/live.py --out benchmarks/results/live_cpu.json [--seconds 10] [--models fast-x4,srresnet-x4]

The cameras are GStreamer RTSP servers on 127.0.0.1 (tests/cameras.py; Debian's python3-gi and
gir1.2-gst-rtsp-server-1.0) sending the real vtest footage at 160x90, 25 fps, in real time; the upscaler joins each
camera as it would join a real one. Latency uses the stream's timestamps against the wall clock, the earliest
arrival setting the offset (`srstream.video.buffer.CaptureClock`). Peak RSS is each srstream process's ru_maxrss.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from report import emit  # noqa: E402

from cameras import Camera, camera_clip, gst_rtsp_available  # noqa: E402


def run_and_measure(args_list: list[list[str]]) -> tuple[list, list[float], float]:
    """Start one srstream per argument list at once; (their JSON, their peak RSS in MiB, wall seconds)."""
    started = time.monotonic()
    # stderr goes to a file: a pipe nobody reads until stdout ends could fill and stall the child.
    errs = [tempfile.TemporaryFile(mode="w+") for _ in args_list]  # noqa: SIM115 - read after the children end
    procs = [subprocess.Popen([sys.executable, "-m", "srstream.cli", "upscale", *a, "--json", "-q"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=e, text=True) for a, e in zip(args_list, errs)]
    results, rss = [], []
    for proc, err_file in zip(procs, errs):
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # (not communicate: wait4 also gives the child's peak RSS)
        err_file.seek(0)
        err = err_file.read()
        err_file.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode not in (0,):
            raise RuntimeError(f"srstream exited {proc.returncode}: {err.strip()[-400:]}")
        results.append(json.loads(out))
        rss.append(round(usage.ru_maxrss / 1024, 1))
    return results, rss, round(time.monotonic() - started, 2)


def summary(streams: list[dict], wall: float) -> dict:
    frames = sum(s["frames_out"] for s in streams)
    return {"frames_out": frames, "dropped_frames": sum(s["dropped_frames"] for s in streams),
            "throughput_fps": round(frames / wall, 2), "wall_s": wall,
            "latency_p50_s": [s["latency_p50_s"] for s in streams],
            "latency_p95_s": [s["latency_p95_s"] for s in streams],
            "worst_p95_s": max(s["latency_p95_s"] or 0 for s in streams),
            "fps_out_each": [s["fps"] for s in streams]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="fast-x4,srresnet-x4")
    parser.add_argument("--seconds", type=float, default=10.0, help="-t of each run")
    parser.add_argument("--max-latency", type=float, default=2.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not gst_rtsp_available():
        sys.exit("needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and ffmpeg")
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "cameras": "160x90, 25 fps, H.264, real "
              "footage, GStreamer RTSP on 127.0.0.1", "seconds": args.seconds, "max_latency_s": args.max_latency,
              "runs": {}}
    common = ["-t", str(args.seconds), "--max-latency", str(args.max_latency), "--batch", "4"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = camera_clip(tmp / "cam.ts", int(args.seconds) + 30)
        cams = [Camera(clip).start() for _ in range(4)]
        try:
            for model in filter(None, args.models.split(",")):
                runs = {}
                for n in (1, 4):
                    out = tmp / f"{model}_{n}"
                    out.mkdir()
                    results, rss, wall = run_and_measure([[*(c.url for c in cams[:n]), str(out), "-m", model,
                                                           *common]])
                    streams = results[0] if isinstance(results[0], list) else [results[0]]
                    runs[f"{n}_camera{'s' if n > 1 else ''}_one_process"] = {**summary(streams, wall),
                                                                            "peak_rss_mib": rss[0]}
                    print(json.dumps({model: runs}), flush=True)
                out = tmp / f"{model}_procs"
                out.mkdir()
                results, rss, wall = run_and_measure([[c.url, str(out / f"{i}.mp4"), "-m", model, *common]
                                                      for i, c in enumerate(cams)])
                runs["4_cameras_4_processes"] = {**summary(results, wall), "peak_rss_mib": rss,
                                                 "peak_rss_total_mib": round(sum(rss), 1)}
                one, four = runs["4_cameras_one_process"], runs["4_cameras_4_processes"]
                runs["one_process_over_4_processes"] = {
                    "memory": round(one["peak_rss_mib"] / four["peak_rss_total_mib"], 3),
                    "throughput": round(one["throughput_fps"] / four["throughput_fps"], 3)}
                report["runs"][model] = runs
                print(json.dumps({model: runs["one_process_over_4_processes"]}), flush=True)
        finally:
            for cam in cams:
                cam.kill()
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
