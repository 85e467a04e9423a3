"""How long a camera is away when the Ray node running it dies, as JSON: `srstream serve --ray` on a local cluster
(a head and a second node on 127.0.0.1, tests/ray_cluster.py), two GStreamer RTSP cameras (one a node), the second
node killed outright; from the kill to /healthz showing the camera up again on the head, per trial.

    python benchmarks/ray_failover.py --out benchmarks/results/ray_failover_cpu.json [--trials 3]
"""
from __future__ import annotations

import argparse
import json
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

from cameras import Camera, camera_clip, gst_rtsp_available  # noqa: E402
from conftest import free_port  # noqa: E402
from ray_cluster import RayCluster, ray_available  # noqa: E402


def health(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())
    except OSError:
        return {}


def until(check, timeout: float) -> float | None:
    """Seconds until `check()` holds (polled every 0.1 s), None if it never did within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.1)
    return None


def trial(work: Path) -> dict:
    cameras = [Camera(camera_clip(work / f"c{i}.ts", 120)).start() for i in range(2)]
    cluster = RayCluster(work)
    port = free_port()
    site = work / "site.toml"
    site.write_text(f'[server]\nmetrics = "127.0.0.1:{port}"\n[defaults]\nmodel = "fast-x4"\nsegment_time = 2\n' +
                    "".join(f'[cameras.c{i}]\ninput = "{c.url}"\nrecord = "rec/c{i}"\n' for i, c in enumerate(cameras)))
    serve = None
    try:
        cluster.start()
        serve = subprocess.Popen([sys.executable, "-m", "srstream.cli", "serve", str(site), "--ray", cluster.address],
                                 cwd=work, env=cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert until(lambda: health(port).get("status") == "ok", 240) is not None, "the cameras never came up"
        nodes = {n: h["node"] for n, h in health(port)["cameras"].items()}
        time.sleep(5)
        cluster.kill_node()
        down = until(lambda: health(port).get("status") == "degraded", 60)
        back = until(lambda: health(port).get("status") == "ok" and
                     len({h.get("node") for h in health(port)["cameras"].values()}) == 1, 120)
        moved = [n for n, h in health(port).get("cameras", {}).items() if h.get("node") != nodes[n]]
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=120)
        return {"seen_down_s": None if down is None else round(down, 1),
                "back_up_s": None if back is None or down is None else round(down + back, 1), "moved": moved}
    finally:
        if serve is not None and serve.poll() is None:
            serve.kill()
        cluster.stop()
        for camera in cameras:
            camera.kill()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (gst_rtsp_available() and ray_available()):
        sys.exit("ray_failover.py: needs Ray (srstream[ray]) and GStreamer's RTSP server")
    trials = []
    for _ in range(args.trials):
        with tempfile.TemporaryDirectory() as tmp:
            trials.append(trial(Path(tmp)))
    backs = [t["back_up_s"] for t in trials if t["back_up_s"] is not None]
    emit({"benchmark": "ray_failover", "trials": trials, "back_up_s_max": max(backs) if backs else None,
          "within_30_s": len(backs) == len(trials) and max(backs) <= 30}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
