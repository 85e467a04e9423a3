"""Soak: four live cameras through one srstream process for a long time, one camera dropping and returning every
minute; resident memory, latency, drops and reconnects over time, as JSON.

    python benchmarks/soak.py --out benchmarks/results/soak_cpu.json [--minutes 10] [--model fast-x4]

The cameras are GStreamer RTSP servers on 127.0.0.1 (tests/cameras.py) sending the real vtest footage at 160x90,
25 fps. Every minute camera 0 is killed for `--outage` seconds and started again on the same port. srstream's
status lines (one per camera, about once a second) give each camera's latency, drops and reconnects as they happen;
its resident memory is read from /proc every few seconds. At the end srstream is stopped with SIGTERM, which must
finish every output (exit 130). Goals: memory flat within 5 % after the first minute, latency within
--max-latency, every outage recovered.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from report import emit  # noqa: E402

from cameras import Camera, camera_clip, gst_rtsp_available  # noqa: E402

SUMMARY = re.compile(r"wrote \S+?127\.0\.0\.1_(\d+)_cam\.mp4: (\d+) frames .*?(\d+) reconnects, (\d+) dropped"
                     r".*?latency p50 ([\d.]+) s, p95 ([\d.]+) s")
LINE = re.compile(r"127\.0\.0\.1:(\d+)/cam\S*\s.*?in ([\d.]+) fps, out ([\d.]+) fps, dropped (\d+), latency "
                  r"(?:([\d.]+) s|-), reconnects (\d+)")


def rss_mib(pid: int) -> float | None:
    """Resident memory of `pid` (VmRSS), MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


class StatusReader(threading.Thread):
    """Collects srstream's status lines (tqdm writes them with carriage returns and cursor moves) as samples."""

    def __init__(self, stream, started: float) -> None:
        super().__init__(daemon=True)
        self.stream, self.started, self.samples, self.tail = stream, started, [], ""
        self.results: dict[int, dict] = {}  # by camera port, from the summary lines at the end

    def run(self) -> None:
        buffer = ""
        while chunk := self.stream.read1(65536):
            buffer += chunk.decode(errors="replace")
            *done, buffer = re.split(r"[\r\n]", buffer)
            for piece in done:
                self.tail = (self.tail + piece + "\n")[-4000:]
                for m in SUMMARY.finditer(piece):
                    port, frames, reconnects, dropped, p50, p95 = m.groups()
                    self.results[int(port)] = {"frames_out": int(frames), "reconnects": int(reconnects),
                                               "dropped_frames": int(dropped), "latency_p50_s": float(p50),
                                               "latency_p95_s": float(p95)}
                for m in LINE.finditer(piece):
                    port, fps_in, fps_out, dropped, latency, reconnects = m.groups()
                    self.samples.append({"t": round(time.monotonic() - self.started, 1), "port": int(port),
                                         "fps_in": float(fps_in), "fps_out": float(fps_out),
                                         "dropped": int(dropped),
                                         "latency_s": None if latency is None else float(latency),
                                         "reconnects": int(reconnects)})


def outages(camera: Camera, seconds: float, outage: float, stop: threading.Event, log: list) -> None:
    """Every minute: camera down for `outage` seconds, then up again on the same port."""
    start = time.monotonic()
    minute = 1
    while not stop.wait(max(0.0, start + 60 * minute - time.monotonic())):
        if time.monotonic() - start + outage + 20 > seconds:
            return  # leave time to see the last outage recovered
        camera.kill()
        log.append({"down_at_s": round(time.monotonic() - start, 1)})
        if stop.wait(outage):
            return
        camera.start()
        log[-1]["up_at_s"] = round(time.monotonic() - start, 1)
        minute += 1


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def summarise(samples: list[dict], memory: list[dict], results: list[dict], downs: list[dict],
              max_latency: float) -> dict:
    """The goals, from the samples: memory drift from the second minute to the last, latency, recoveries."""
    rss = [(m["t"], m["rss_mib"]) for m in memory if m["rss_mib"]]
    second = _mean([r for t, r in rss if 60 <= t < 120])
    last = _mean([r for t, r in rss if t >= rss[-1][0] - 60])
    drift = None if not (second and last) else round((last - second) / second, 4)
    latencies = [s["latency_s"] for s in samples if s["latency_s"] is not None]
    flaky = results[0]
    return {"rss_mib": {"second_minute_mean": second, "last_minute_mean": last, "drift": drift,
                        "min_after_first_minute": min((r for t, r in rss if t >= 60), default=None),
                        "max_after_first_minute": max((r for t, r in rss if t >= 60), default=None)},
            "memory_flat_within_5_percent": drift is not None and abs(drift) <= 0.05,
            "status_latency_s": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95),
                                 "max": max(latencies, default=None)},
            "latency_p95_within_max": all(r["latency_p95_s"] <= max_latency for r in results),
            "outages": len(downs), "reconnects_of_the_flaky_camera": flaky["reconnects"],
            "every_outage_recovered": flaky["reconnects"] >= len(downs),
            "frames_out": [r["frames_out"] for r in results], "dropped": [r["dropped_frames"] for r in results],
            "latency_p50_s": [r["latency_p50_s"] for r in results],
            "latency_p95_s": [r["latency_p95_s"] for r in results]}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))], 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default="fast-x4")
    parser.add_argument("--max-latency", type=float, default=2.0)
    parser.add_argument("--outage", type=float, default=10.0, help="seconds camera 0 is down each minute")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not gst_rtsp_available():
        sys.exit("needs Debian's python3-gi, gir1.2-gst-rtsp-server-1.0 and ffmpeg")
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = camera_clip(tmp / "cam.ts", int(seconds) + 120)
        cams = [Camera(clip).start() for _ in range(4)]
        out = tmp / "site"
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-m", "srstream.cli", "upscale", *(c.url for c in cams), str(out),
                                 "-m", args.model, "--max-latency", str(args.max_latency), "--retries", "100000",
                                 "--timeout", "2"], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)  # no --json: the status lines are what is sampled
        reader = StatusReader(proc.stderr, started)
        reader.start()
        stop, downs, memory = threading.Event(), [], []
        flaky = threading.Thread(target=outages, args=(cams[0], seconds, args.outage, stop, downs), daemon=True)
        flaky.start()
        try:
            while time.monotonic() - started < seconds and proc.poll() is None:
                memory.append({"t": round(time.monotonic() - started, 1), "rss_mib": rss_mib(proc.pid)})
                time.sleep(5)
            stop.set()
            proc.send_signal(signal.SIGTERM)  # as a service manager stops it (SIGINT may be ignored in the background)
            proc.wait(timeout=300)
        finally:
            stop.set()
            for cam in cams:
                cam.kill()
        reader.join(timeout=10)
        if len(reader.results) != len(cams):
            raise SystemExit(f"srstream exited {proc.returncode} without every summary: {reader.tail[-2000:]}")
        results = [reader.results[cam.port] for cam in cams]
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "model": args.model,
              "minutes": args.minutes, "max_latency_s": args.max_latency, "outage_s": args.outage,
              "cameras": "4 x 160x90, 25 fps, H.264, real footage, GStreamer RTSP on 127.0.0.1",
              "exit_code": proc.returncode, "summary": summarise(reader.samples, memory, results, downs,
                                                               args.max_latency),
              "outages": downs, "memory": memory, "status_samples": reader.samples[::4]}
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
