"""Video pipeline overhead and memory: pipeline fps vs engine-only fps on the same frames, and peak RSS at
100 vs 1000 frames, in one run, as JSON.

    python benchmarks/video.py ../shared/data/video/vtest.avi --model fast-x4 --size 320x180

Engine-only: the decoded frames are held in memory and pushed through `Upscaler.upscale` in batches.
Pipeline: `upscale_video` on the same clip (decode, colour conversion, engine, encode, mux, audio copy).
Peak RSS is measured in fresh child processes (ru_maxrss), one per frame count.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from srstream.engine import Upscaler  # noqa: E402
from srstream.video import EncodeOptions, Settings, upscale_video  # noqa: E402


def make_clip(source: str, size: str, frames: int, path: Path) -> None:
    """`frames` frames of `source` (looped as needed) at `size`, H.264, audio kept."""
    w, h = size.split("x")
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", source, "-frames:v", str(frames),
                    "-vf", f"scale={w}:{h}", "-c:v", "libx264", "-preset", "fast", "-crf", "18", "-c:a", "aac",
                    "-shortest", str(path)], check=True)


def engine_only_fps(clip: Path, upscaler: Upscaler, batch: int) -> float:
    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    upscaler.upscale(np.stack(frames[:batch]))  # warm-up
    start = time.perf_counter()
    for i in range(0, len(frames), batch):
        upscaler.upscale(np.stack(frames[i:i + batch]))
    return len(frames) / (time.perf_counter() - start)


def child(clip: str, model: str, backend: str, batch: int, preset: str) -> None:
    """Run the pipeline once and print its stats and peak RSS (MiB) as JSON."""
    upscaler = Upscaler(model, backend=backend, batch_size=batch)
    with tempfile.TemporaryDirectory() as tmp:
        stats = upscale_video(clip, Path(tmp) / "out.mp4", upscaler,
                              Settings(options=EncodeOptions(preset=preset), batch=batch), progress=False)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": stats.frames_out, "fps": stats.fps, "peak_rss_mib": round(rss, 1)}))


def run_child(clip: Path, args) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", str(clip), "--model", args.model, "--backend",
                          args.backend, "--batch", str(args.batch), "--preset", args.preset],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video", nargs="?", help="real footage to build the clips from")
    parser.add_argument("--model", default="fast-x4")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--size", default="320x180", help="LR clip size WxH")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--preset", default="veryfast", help="x264 preset of the pipeline's encoder")
    parser.add_argument("--counts", default="100,1000", help="frame counts for the memory comparison")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.model, args.backend, args.batch, args.preset)
        return 0
    counts = [int(c) for c in args.counts.split(",")]
    report = {"model": args.model, "size": args.size, "batch": args.batch, "preset": args.preset,
              "machine": torch.cuda.get_device_name() if torch.cuda.is_available() else f"{platform.machine()} CPU",
              "torch_threads": torch.get_num_threads()}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {n: Path(tmp) / f"clip_{n}.mp4" for n in counts}
        for n, path in clips.items():
            make_clip(args.video, args.size, n, path)
        upscaler = Upscaler(args.model, backend=args.backend, batch_size=args.batch)
        report["backend"] = upscaler.backend_name
        engine = engine_only_fps(clips[counts[0]], upscaler, args.batch)
        runs = {n: run_child(clips[n], args) for n in counts}
    report["engine_only_fps"] = round(engine, 2)
    report["pipeline_fps"] = runs[counts[0]]["fps"]
    report["pipeline_over_engine"] = round(runs[counts[0]]["fps"] / engine, 3)
    report["peak_rss_mib"] = {str(n): r["peak_rss_mib"] for n, r in runs.items()}
    report["rss_ratio"] = round(runs[counts[-1]]["peak_rss_mib"] / runs[counts[0]]["peak_rss_mib"], 3)
    report["frames_written"] = {str(n): r["frames"] for n, r in runs.items()}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
