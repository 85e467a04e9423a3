"""A site of cameras in one `srstream serve`, as JSON: 8 cameras (160x90 at 10 fps -> 640x360, fast-x4) for 10
minutes, recording 30-s segments with their originals under a per-camera byte cap, as a surveillance user runs it.

    python benchmarks/site.py --out benchmarks/results/site_cpu.json [--cameras 8] [--seconds 600]

The cameras are GStreamer RTSP servers on 127.0.0.1 (tests/cameras.py) sending the real vtest footage in real time.
Every 5 s the run reads /metrics: frames, drops, the latency histogram and the process's RSS, and the disk each
camera's recordings take. At the end it checks what the issue asks: no segment lost (each run's segments are
numbered without a gap and their spans meet, and every one is either on disk or removed by retention), latency p95
within max_latency, memory flat (the last minute's mean RSS within 3 % of the second minute's), the cap held, and
every remaining segment passing `srstream verify`.
"""
from __future__ import annotations

import argparse
import json
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from report import emit  # noqa: E402

from srstream.site.recordings import rows_of  # noqa: E402

from cameras import Camera, gst_rtsp_available  # noqa: E402
from conftest import DATA, free_port  # noqa: E402

CAP = 24 * 1024 * 1024  # bytes per camera: about 12 minutes at 640x360 would need more, so retention must act


def clip(path: Path, seconds: int) -> Path:
    """The real vtest clip looped to `seconds` at 160x90, 10 fps, a key frame a second."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(DATA / "video" /
                    "vtest_320x180_2s.mp4"), "-t", str(seconds), "-vf", "scale=160:90,fps=10", "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0", "-an",
                    str(path)], check=True, timeout=600)
    return path


def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics by its name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        lines = r.read().decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line and line[0] != "#"}


def p95_of(sample: dict[str, float], camera: str) -> float | None:
    """The 95th percentile of a camera's latency from its histogram (linear within the bucket)."""
    buckets = sorted((float(k.split('le="')[1].rstrip('"}')), v) for k, v in sample.items()
                     if k.startswith(f'srstream_latency_seconds_bucket{{camera="{camera}"') and "+Inf" not in k)
    total = sample.get(f'srstream_latency_seconds_count{{camera="{camera}"}}', 0)
    if not total:
        return None
    low, below = 0.0, 0.0
    for edge, count in buckets:
        if count >= 0.95 * total:
            return round(low + (edge - low) * (0.95 * total - below) / max(count - below, 1e-9), 3)
        low, below = edge, count
    return float("inf")


def segments_check(directory: Path) -> dict:
    """Each run's listed segments: numbered without a gap, each on disk or removed by retention; and the longest
    time between one segment's end and the next one's start (frames dropped at the cut, not a segment lost)."""
    listed, gaps, on_disk, span_gap = 0, 0, 0, 0.0
    for listing in sorted(directory.glob(".*.segments.csv")):
        if "_orig" in listing.name:
            continue
        rows = rows_of(listing)
        listed += len(rows)
        for i, (name, start, _end) in enumerate(rows):
            gaps += int(not name.endswith(f"_{i:03d}.mp4"))
            if i:
                span_gap = max(span_gap, float(start) - float(rows[i - 1][2]))
            on_disk += int((directory / name).is_file())
    return {"listed": listed, "index_gaps": gaps, "on_disk": on_disk, "max_span_gap_s": round(span_gap, 3)}


def write_site(path: Path, cameras: list[Camera], port: int) -> None:
    text = (f'[server]\nmetrics = "127.0.0.1:{port}"\n[defaults]\nmodel = "fast-x4"\nsegment_time = 30\n'
            f'keep_bytes = {CAP}\nkeep_original = true\nmax_latency = 2.0\n')
    for i, camera in enumerate(cameras):
        text += f'[cameras.cam{i}]\ninput = "{camera.url}"\nrecord = "rec/cam{i}"\n'
    path.write_text(text)


def run(cameras_n: int, seconds: int, work: Path) -> dict:
    source = clip(work / "cam.ts", seconds + 120)
    cameras = [Camera(source).start() for _ in range(cameras_n)]
    port = free_port()
    write_site(work / "site.toml", cameras, port)
    log = open(work / "serve.log", "w")  # noqa: SIM115 - the server writes it for as long as it runs
    serve = subprocess.Popen([sys.executable, "-m", "srstream.cli", "serve", str(work / "site.toml")], cwd=work,
                             stdout=subprocess.DEVNULL, stderr=log)
    samples, started = [], time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            time.sleep(5)
            try:
                sample = scrape(port)
            except OSError:
                continue
            disk = [sum(p.stat().st_size for p in (work / "rec" / f"cam{i}").glob("cam*") if p.is_file())
                    for i in range(cameras_n)]
            samples.append({"t": round(time.monotonic() - started, 1), "metrics": sample, "disk": disk})
        serve.send_signal(signal.SIGTERM)
        code = serve.wait(timeout=120)
    finally:
        if serve.poll() is None:
            serve.kill()
        for camera in cameras:
            camera.kill()
    return summarise(samples, work, cameras_n, code, seconds)


def summarise(samples: list[dict], work: Path, cameras_n: int, code: int, seconds: int) -> dict:
    last = samples[-1]["metrics"]
    names = [f"cam{i}" for i in range(cameras_n)]
    rss = [(s["t"], s["metrics"].get("process_resident_memory_bytes", 0) / 2 ** 20) for s in samples]
    second = [m for t, m in rss if 60 <= t < 120]
    final = [m for t, m in rss if t >= seconds - 60]
    segments = {n: segments_check(work / "rec" / n) for n in names}
    remaining = sorted((work / "rec").glob("cam*/cam*_[0-9][0-9][0-9].mp4"))
    verify = subprocess.run([sys.executable, "-m", "srstream.cli", "verify", "--json", *map(str, remaining)],
                            capture_output=True, text=True, cwd=ROOT, timeout=1200)
    verdicts = json.loads(verify.stdout or "[]")
    per_camera = {n: {"frames_in": last.get(f'srstream_frames_in_total{{camera="{n}"}}'),
                      "frames_out": last.get(f'srstream_frames_out_total{{camera="{n}"}}'),
                      "dropped": last.get(f'srstream_frames_dropped_total{{camera="{n}"}}'),
                      "reconnects": last.get(f'srstream_reconnects_total{{camera="{n}"}}'),
                      "latency_p95_s": p95_of(last, n),
                      "disk_max_bytes": max(s["disk"][i] for s in samples), **segments[n]}
                  for i, n in enumerate(names)}
    rss_second, rss_last = sum(second) / max(len(second), 1), sum(final) / max(len(final), 1)
    return {"cameras": per_camera, "exit_code": code, "seconds": seconds,
            "rss_mib_second_minute": round(rss_second, 1), "rss_mib_last_minute": round(rss_last, 1),
            "memory_flat": abs(rss_last - rss_second) <= 0.03 * rss_second,
            "segments_verified": sum(v["ok"] for v in verdicts), "segments_remaining": len(remaining),
            "no_segment_lost": all(s["index_gaps"] == 0 for s in segments.values()),
            "latency_within_max": all((c["latency_p95_s"] or 99) <= 2.0 for c in per_camera.values()),
            "cap_bytes": CAP, "rss_mib": [[t, round(m, 1)] for t, m in rss]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not gst_rtsp_available():
        sys.exit("site.py: needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and ffmpeg")
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args.cameras, args.seconds, Path(tmp))
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    report = {"benchmark": "site", "machine": {"cpu": model, "cores": len(__import__("os").sched_getaffinity(0)),
                                                "bf16": "avx512_bf16" in cpu, "python": platform.python_version()},
              **report}
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
