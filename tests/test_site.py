"""`srstream serve SITE.toml` against real servers on 127.0.0.1: GStreamer RTSP cameras (with credentials in their
URLs), ffmpeg accepting the re-stream over RTSP (ANNOUNCE/RECORD) and RTMP, Debian's Prometheus scraping /metrics;
SIGHUP restarts only the camera that changed, SIGTERM finishes every segment, every segment passes `srstream
verify`, and no credential reaches a log, a sidecar, metadata, /metrics or /healthz. The example systemd unit's
command lines are run as systemd would run them.
"""
from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from assets import EXAMPLES, ROOT
from cameras import Camera, Receiver, camera_clip, needs_rtsp
from conftest import free_port

SECRET = "hunter2-secret"


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _wait(what: str, check, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _health(port: int) -> dict:
    status, body = _get(f"http://127.0.0.1:{port}/healthz")
    return json.loads(body) if status else {}


def _metric(port: int, name: str, camera: str) -> float | None:
    _, body = _get(f"http://127.0.0.1:{port}/metrics")
    for line in body.splitlines():
        if line.startswith(f'{name}{{camera="{camera}"}}'):
            return float(line.split()[-1])
    return None


@pytest.fixture
def cams(tmp_path):
    made: list = []

    def make(kind=Camera, *args):
        thing = kind(*args).start()
        made.append(thing)
        return thing

    yield make
    for thing in made:
        thing.kill() if isinstance(thing, Camera) else thing.stop()


def _serve(site: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "srstream.cli", "serve", str(site)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def _site(tmp_path: Path, port: int, cameras: str) -> Path:
    site = tmp_path / "site.toml"
    site.write_text(f'[server]\nmetrics = "127.0.0.1:{port}"\n[defaults]\nmodel = "fast-x4"\nsegment_time = 2\n'
                    f"keep_original = true\n{cameras}")
    return site


def _frames(path: Path) -> tuple[int, int, int]:
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return v.codec_context.width, v.codec_context.height, sum(1 for _ in c.decode(video=0))


def _prometheus(tmp_path: Path, target: int) -> tuple[subprocess.Popen, int]:
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: srstream\n    static_configs:\n"
                      f"      - targets: ['127.0.0.1:{target}']\n")
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    return proc, port


def _check_outputs(tmp_path: Path, log: str, scraped: str) -> None:
    """After the site test: the re-stream read back at the new size, every segment verified, b's cap held with its
    oldest segment gone, and no password anywhere srstream wrote."""
    assert "srstream_latency_seconds_bucket" in scraped and "process_resident_memory_bytes" in scraped
    width, height, count = _frames(tmp_path / "restream2.ts")
    assert (width, height) == (640, 360) and count > 25  # read back at the new size after the server came back
    segments = sorted((tmp_path / "rec").glob("*/*_[0-9][0-9][0-9].mp4"))
    originals = sorted((tmp_path / "rec").glob("*/*_orig_*.mkv"))
    assert len([s for s in segments if s.parent.name == "a"]) >= 5 and originals
    verify = subprocess.run([sys.executable, "-m", "srstream.cli", "verify", "--json", *map(str, segments)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    verdicts = json.loads(verify.stdout)
    assert verify.returncode == 0, [v for v in verdicts if not v["ok"]]
    assert all(v["model"] == "fast-x4" for v in verdicts)
    b_dir = tmp_path / "rec" / "b"
    b_files = [p for p in b_dir.iterdir() if p.is_file()]
    largest = max(p.stat().st_size for p in b_files)
    assert sum(p.stat().st_size for p in b_files) <= 400 * 1024 + largest  # the cap (a segment of slack: the stop)
    listings = sorted(p for p in b_dir.glob(".b_*.segments.csv") if "_orig" not in p.name)
    first_run = listings[0].name.removeprefix(".").removesuffix(".segments.csv")
    assert not (b_dir / f"{first_run}_000.mp4").exists()  # the oldest went first
    written = log + verify.stdout + scraped + "".join(
        p.read_text() for p in (tmp_path / "rec").glob("*/*.json"))
    assert SECRET not in written and "***@127.0.0.1" in written


@needs_rtsp
def test_a_site_records_restreams_reloads_and_stops_with_verified_segments(cams, tmp_path):
    a = cams(Camera, camera_clip(tmp_path / "a.ts", 60))
    b = cams(Camera, camera_clip(tmp_path / "b.ts", 60))
    receiver = cams(Receiver, "rtsp", tmp_path / "restream1.ts")
    port = free_port()
    cameras = (f'[cameras.a]\ninput = "{a.url.replace("rtsp://", f"rtsp://admin:{SECRET}@")}"\n'
               f'record = "rec/a"\nrestream = "{receiver.url}"\n'
               f'[cameras.b]\ninput = "{b.url.replace("rtsp://", f"rtsp://admin:{SECRET}@")}"\nrecord = "rec/b"\n'
               'keep_bytes = "400K"\n')
    site = _site(tmp_path, port, cameras)
    log = tmp_path / "serve.log"
    prometheus = None
    serve = _serve(site, log)
    try:
        _wait("both cameras up", lambda: _health(port).get("status") == "ok")
        if shutil.which("prometheus"):
            prometheus, prom_port = _prometheus(tmp_path, port)
        _wait("the re-stream published", lambda: _metric(port, "srstream_restream_up", "a") == 1.0)
        time.sleep(4)
        receiver.stop()  # the restreamer goes away ...
        _wait("the re-stream seen down", lambda: _metric(port, "srstream_restream_up", "a") == 0.0, 30)
        receiver.start(tmp_path / "restream2.ts")  # ... and comes back
        _wait("publishing resumed", lambda: _metric(port, "srstream_restream_up", "a") == 1.0, 60)
        time.sleep(3)
        latency = _health(port)["cameras"]["a"]["restream_latency_p95_s"]  # capture to published
        assert latency is not None and latency <= 2.0  # within max_latency
        before = _health(port)["cameras"]
        site.write_text(site.read_text().replace('record = "rec/b"', 'record = "rec/b"\ncrf = 23'))
        serve.send_signal(signal.SIGHUP)
        _wait("b restarted", lambda: _health(port).get("cameras", {}).get("b", {}).get("since") not in
              (None, before["b"]["since"]), 60)
        _wait("b up again", lambda: _health(port).get("status") == "ok", 60)
        health = _health(port)
        assert health["cameras"]["a"]["since"] == before["a"]["since"]  # the unchanged camera ran on
        if prometheus is not None:
            query = f"http://127.0.0.1:{prom_port}/api/v1/query?query=srstream_frames_out_total"
            _wait("Prometheus scraped the frames", lambda: '"a"' in _get(query)[1] and '"b"' in _get(query)[1], 60)
        scraped = _get(f"http://127.0.0.1:{port}/metrics")[1] + json.dumps(health)
        time.sleep(3)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(timeout=10)
    receiver.stop()

    _check_outputs(tmp_path, log.read_text(), scraped)


def test_site_file_errors_are_one_line_naming_the_key_and_the_file(tmp_path):
    from srstream.site.config import SiteConfigError, load_site

    def error(text: str) -> str:
        path = tmp_path / "site.toml"
        path.write_text(text)
        with pytest.raises(SiteConfigError) as caught:
            load_site(path)
        message = str(caught.value)
        assert "\n" not in message and str(path) in message
        return message

    camera = '[cameras.lobby]\ninput = "rtsp://admin:pw123@cam/1"\nrecord = "rec"\n'
    assert "cameras.lobby.recrod: unknown key" in error(camera + 'recrod = "x"\n')
    assert "server.port: unknown key" in error('[server]\nport = 1\n' + camera)
    assert "cameras.lobby.keep" in error(camera + 'keep = "a week"\n')
    assert "cameras.lobby.keep_bytes" in error(camera + 'keep_bytes = "lots"\n')
    assert "server.metrics" in error('[server]\nmetrics = "9108"\n' + camera)
    assert "no input" in error('[cameras.lobby]\nrecord = "rec"\n')
    assert "neither record nor restream" in error('[cameras.lobby]\ninput = "rtsp://cam/1"\n')
    assert "site.toml: not valid TOML: line 1: " in error("[cameras\n")
    message = error('[cameras.lobby]\ninput = "rtsp://admin:pw123@cam/1"\nrestream = "rtsp://u:pw123@nvr"\n'
                    'crf = "high"\n')
    assert "cameras.lobby.crf" in message and "pw123" not in message

    (tmp_path / "site.toml").write_text('[defaults]\nkeep = "7d"\nkeep_bytes = "50G"\nsegment_time = "2m"\n'
                                        + camera + '[cameras.yard]\ninput = "rtsp://cam/2"\nrecord = "/r"\n'
                                        'keep = "12h"\n')
    site = load_site(tmp_path / "site.toml")
    assert site.cameras["lobby"].keep == 7 * 86400 and site.cameras["yard"].keep == 12 * 3600
    assert site.cameras["yard"].keep_bytes == 50 * 1024 ** 3 and site.cameras["lobby"].segment_time == 120
    assert site.cameras["lobby"].record == tmp_path / "rec"  # relative to the site file
    assert site.cameras["lobby"].shown_input == "rtsp://***@cam/1" and site.metrics == "127.0.0.1:9108"


def test_credentials_never_reach_a_log_line_or_the_json():
    import logging

    from srstream.redact import RedactingFilter, redact
    from srstream.video.stats import Stats

    assert redact("rtsp://admin:p@ss:w0rd@cam.local:554/s1 dropped") == "rtsp://***@cam.local:554/s1 dropped"
    assert redact("rtsp://cam.local/s1 and mail@example.com") == "rtsp://cam.local/s1 and mail@example.com"
    record = logging.LogRecord("srstream", logging.WARNING, __file__, 1, "srstream: %s dropped",
                               ("rtsp://u:secret@cam/1",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "srstream: rtsp://***@cam/1 dropped"
    stats = Stats(input="rtsp://u:secret@cam/1", output="rtmp://u:secret@nvr/live", error="rtsp://u:secret@cam/1: x")
    assert "secret" not in json.dumps(stats.to_dict())


@needs_rtsp
def test_the_example_systemd_unit_runs_reloads_and_stops(cams, tmp_path):
    """ExecStart, ExecReload and KillSignal of examples/site/srstream.service, with %E (the configuration
    directory) and $MAINPID expanded as systemd would; the re-stream goes to an RTMP server."""
    unit = configparser.ConfigParser(interpolation=None)
    unit.read(EXAMPLES / "site" / "srstream.service")
    service = unit["Service"]
    camera = cams(Camera, camera_clip(tmp_path / "cam.ts", 40))
    receiver = cams(Receiver, "rtmp", tmp_path / "restream.ts")
    etc = tmp_path / "etc"
    (etc / "srstream").mkdir(parents=True)
    port = free_port()
    site = _site(etc / "srstream", port, f'[cameras.lobby]\ninput = "{camera.url}"\nrecord = "{tmp_path / "rec"}"\n'
                 f'restream = "{receiver.url}"\n')
    assert site == etc / "srstream" / "site.toml"
    argv = shlex.split(service["ExecStart"].replace("%E", str(etc)))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    serve = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        _wait("the camera up", lambda: _health(port).get("status") == "ok")
        _wait("the re-stream published", lambda: _metric(port, "srstream_restream_up", "lobby") == 1.0, 60)
        time.sleep(3)
        reload = shlex.split(service["ExecReload"].replace("$MAINPID", str(serve.pid)))
        subprocess.run(reload, check=True, timeout=10)
        time.sleep(2)
        assert _health(port)["cameras"]["lobby"]["runs"] == 1  # the file did not change: nothing restarted
        serve.send_signal(getattr(signal, service["KillSignal"]))
        assert serve.wait(timeout=int(service["TimeoutStopSec"])) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
    receiver.stop()
    assert "reloaded" in serve.stderr.read()
    assert _frames(tmp_path / "restream.ts")[:2] == (640, 360)
    segments = sorted((tmp_path / "rec").glob("lobby_*_[0-9][0-9][0-9].mp4"))
    assert segments and all(p.with_name(p.name + ".json").is_file() for p in segments)


def test_label_marks_the_bottom_left_corner_and_nothing_else(tmp_path):
    """--label burns 'upscaled by srstream MODEL' into every frame: the pictures differ from an unlabelled run
    only in a small box at the bottom left, and there clearly."""
    import numpy as np

    from conftest import EXAMPLES as examples

    def run(out: Path, *extra: str) -> np.ndarray:
        subprocess.run([sys.executable, "-m", "srstream.cli", "upscale", str(examples / "vtest_320x180.mp4"),
                        str(out), "-m", "fast-x4", "-t", "0.3", "--crf", "0", "-q", *extra], check=True, cwd=ROOT,
                       timeout=120)
        import av

        with av.open(str(out)) as c:
            return np.stack([f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)])

    plain, labelled = run(tmp_path / "plain.mkv"), run(tmp_path / "label.mkv", "--label")
    changed = np.abs(plain - labelled).max(axis=(0, 3)) > 24
    rows, cols = np.nonzero(changed)
    height, width = changed.shape
    assert len(rows) > 200  # the text is there
    assert rows.min() > height * 0.85 and cols.max() < width * 0.6  # and nowhere but the bottom left


@needs_rtsp
def test_on_a_ray_cluster_a_dead_nodes_camera_moves_to_the_other_node(cams, tmp_path):
    """Two cameras on a head and a second node (127.0.0.1): one on each; the second node is killed outright and its
    camera comes back on the head, recording on; the other camera never stops."""
    from ray_cluster import RayCluster, ray_available

    if not ray_available():
        pytest.skip("needs Ray (srstream[ray])")
    a = cams(Camera, camera_clip(tmp_path / "a.ts", 90))
    b = cams(Camera, camera_clip(tmp_path / "b.ts", 90))
    cluster = RayCluster(tmp_path)
    port = free_port()
    site = _site(tmp_path, port, f'[cameras.a]\ninput = "{a.url}"\nrecord = "rec/a"\n'
                 f'[cameras.b]\ninput = "{b.url}"\nrecord = "rec/b"\n')
    serve = None
    try:
        cluster.start()
        serve = subprocess.Popen([sys.executable, "-m", "srstream.cli", "serve", str(site), "--ray",
                                  cluster.address], cwd=ROOT, env=cluster.env, stdout=subprocess.DEVNULL,
                                 stderr=open(tmp_path / "serve.log", "w"))  # noqa: SIM115 - the server's own
        _wait("both cameras up", lambda: _health(port).get("status") == "ok", 180)
        nodes = {name: h["node"] for name, h in _health(port)["cameras"].items()}
        assert len(set(nodes.values())) == 2  # balanced: one camera a node
        since = {name: h["since"] for name, h in _health(port)["cameras"].items()}
        time.sleep(3)
        cluster.kill_node()
        _wait("a camera moved", lambda: len({h.get("node") for h in _health(port).get("cameras", {}).values()})
              == 1 and _health(port)["status"] == "ok", 90)
        after = _health(port)["cameras"]
        moved = [name for name in nodes if after[name]["since"] != since[name]]
        assert len(moved) == 1 and after[moved[0]]["node"] != nodes[moved[0]]
        stayed = next(name for name in nodes if name not in moved)
        assert after[stayed]["since"] == since[stayed]  # the camera on the surviving node ran on
        time.sleep(4)
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=120) == 0
    finally:
        if serve is not None and serve.poll() is None:
            serve.kill()
        cluster.stop()
    runs = [p for p in (tmp_path / "rec" / moved[0]).glob(f".{moved[0]}_*.segments.csv") if "_orig" not in p.name]
    assert len(runs) == 2  # one run on each node, the second after the move
    # The dead node's last segments got their sidecars from the node that took the camera over (when it died
    # with one unfinished), all but a remnant killed before its first picture.
    segments = sorted((tmp_path / "rec").glob("*/*_[0-9][0-9][0-9].mp4"))
    remnants = [p for p in segments if not p.with_name(p.name + ".json").exists()]
    assert len(remnants) <= 1 and all(p.stat().st_size < 1000 for p in remnants)
    verify = subprocess.run([sys.executable, "-m", "srstream.cli", "verify",
                             *[str(p) for p in segments if p not in remnants]],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert verify.returncode == 0, verify.stdout


@needs_rtsp
def test_segments_of_a_killed_server_get_their_sidecars_when_it_starts_again(cams, tmp_path):
    """SIGKILL (a crash, an OOM kill, a power cut) leaves the last segments without sidecars; the next start writes
    them from the provenance inside each segment, saying so, and they verify."""
    camera = cams(Camera, camera_clip(tmp_path / "cam.ts", 60))
    port = free_port()
    # 6-s segments: the open one holds fragments (one a second) for seconds before the next cut
    site = _site(tmp_path, port, f'[cameras.lobby]\ninput = "{camera.url}"\nrecord = "rec"\nsegment_time = 6\n')
    serve = _serve(site, tmp_path / "first.log")
    try:
        _wait("the camera up", lambda: _health(port).get("status") == "ok")
        _wait("a segment finished", lambda: len(list((tmp_path / "rec").glob("*.mp4.json"))) >= 1, 60)

        def open_segment_has_pictures() -> bool:  # crash-safe: a fragment a second reaches the disk
            newest = sorted((tmp_path / "rec").glob("lobby_*_[0-9][0-9][0-9].mp4"))[-1]
            return not newest.with_name(newest.name + ".json").exists() and newest.stat().st_size > 10_000

        _wait("the open segment's first fragments", open_segment_has_pictures, 30)
    finally:
        serve.kill()
        serve.wait(timeout=30)
    first = sorted((tmp_path / "rec").glob("lobby_*_[0-9][0-9][0-9].mp4"))
    orphans = [p for p in first if not p.with_name(p.name + ".json").exists()]
    assert orphans  # the segment being written when it died
    serve = _serve(site, tmp_path / "second.log")
    try:
        _wait("the camera up again", lambda: _health(port).get("status") == "ok")
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=60) == 0
    finally:
        if serve.poll() is None:
            serve.kill()
    adopted = [p for p in orphans if p.with_name(p.name + ".json").exists()]
    assert adopted == orphans  # each with its pictures up to where the writer stopped
    assert all("writer stopped" in json.loads(p.with_name(p.name + ".json").read_text())["note"] for p in adopted)
    verify = subprocess.run([sys.executable, "-m", "srstream.cli", "verify", *map(str, adopted)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert verify.returncode == 0, verify.stdout


def test_retention_keeps_to_its_own_cameras_files_in_a_shared_directory(tmp_path):
    """`lobby` and `lobby_2` recording into one directory: lobby's byte cap removes lobby's oldest segment and
    nothing of lobby_2's."""
    from srstream.site.recordings import Recordings

    for i, name in enumerate(["lobby_20261207T041500Z_000.mp4", "lobby_2_20261207T041500Z_000.mp4",
                              "lobby_20261207T041500Z_001.mp4", "lobby_2_20261207T041500Z_001.mp4"]):
        path = tmp_path / name
        path.write_bytes(bytes(1000))
        os.utime(path, (1_800_000_000 + i, 1_800_000_000 + i))
    recordings = Recordings(tmp_path, "lobby", keep_bytes=1500)
    assert recordings.bytes_used() == 2000
    recordings.poll()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lobby_20261207T041500Z_001.mp4",
                                                            "lobby_2_20261207T041500Z_000.mp4",
                                                            "lobby_2_20261207T041500Z_001.mp4"]
