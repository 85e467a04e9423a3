"""srstream/site/metrics.py: /metrics reads every camera and engine at each scrape, in Prometheus' text format,
and /healthz is 200 while every camera is up, 503 naming the ones that are down; served over real HTTP."""

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from srstream.site.metrics import Metrics

from conftest import free_port


@dataclass
class Camera:
    """A camera as the metrics read it: the CameraView protocol's four answers, set by the test."""

    name: str
    up: bool = True
    totals: dict = field(default_factory=lambda: {"frames_in": 250, "frames_out": 240, "dropped": 10,
                                                  "reconnects": 1})

    def counts(self) -> dict[str, int]:
        return self.totals

    def health(self) -> dict:
        return {"up": self.up, "publishing": None, "error": None if self.up else "connection refused"}

    def recordings_bytes(self) -> int:
        return 12_345


@dataclass
class Engine:
    model: str = "fast-x4"

    def batch_seconds(self) -> float:
        return 0.25


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_and_health_are_read_at_each_scrape_over_http():
    cameras = [Camera("lobby"), Camera("gate")]
    metrics = Metrics(lambda: cameras, lambda: [Engine()])
    metrics.latency.labels("lobby").observe(0.4)
    port = free_port()
    metrics.serve(f"127.0.0.1:{port}")
    try:
        status, text = _get(f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        assert samples[("srstream_frames_in_total", (("camera", "lobby"),))] == 250
        assert samples[("srstream_frames_dropped_total", (("camera", "gate"),))] == 10
        assert samples[("srstream_camera_up", (("camera", "gate"),))] == 1
        assert samples[("srstream_recordings_bytes", (("camera", "lobby"),))] == 12_345
        assert samples[("srstream_engine_batch_seconds", (("model", "fast-x4"),))] == 0.25
        assert samples[("srstream_latency_seconds_count", (("camera", "lobby"),))] == 1
        assert _get(f"http://127.0.0.1:{port}/healthz")[0] == 200

        cameras[1].up = False  # read again at the next request: nothing to update by hand
        status, body = _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 503 and json.loads(body)["down"] == ["gate"]
        assert "srstream_camera_up{camera=\"gate\"} 0.0" in _get(f"http://127.0.0.1:{port}/metrics")[1]
    finally:
        metrics.close()


def test_health_is_not_ok_before_the_sites_cameras_have_started(tmp_path):
    """`srstream serve` opens its metrics port before the first engine has loaded (seconds on a busy CPU): until a
    camera's runner exists it is down ('starting'), so a readiness probe does not pass on a server with no camera."""
    from srstream.site.config import load_site
    from srstream.site.server import Server

    site_file = tmp_path / "site.toml"
    site_file.write_text('[cameras.lobby]\ninput = "rtsp://127.0.0.1:1/none"\nrecord = "rec"\n'
                         '[cameras.gate]\ninput = "rtsp://127.0.0.1:1/none"\nrecord = "rec"\n')
    server = Server(load_site(site_file))  # nothing started: no engine, no runner
    status, body = server.metrics.health()
    assert status == 503 and body["down"] == ["gate", "lobby"]
    assert body["cameras"]["lobby"]["error"] == "starting"
