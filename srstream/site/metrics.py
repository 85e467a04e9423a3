"""Prometheus metrics and health for `srstream serve`, on one HTTP port (127.0.0.1 unless the site says otherwise):
`/metrics` for a Prometheus scrape, `/healthz` (JSON; 200 when every camera is up, 503 naming those down).

Per camera: frames in (decoded) and out (written), dropped, reconnects, whether it is up and publishing, the latency
from capture to written (a histogram) and the bytes its recordings take; per engine, the time of a batch; and the
process's memory (prometheus-client's process collector). Cameras are labelled by their name in the site file, never
by their URL, so no credential can reach a scrape.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger("srstream.site")
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)


class CameraView(Protocol):
    """What the metrics read of a running camera (site/camera.py's CameraRunner)."""

    @property
    def name(self) -> str: ...

    def counts(self) -> dict[str, int]: ...  # frames_in, frames_out, dropped, reconnects (over all its runs)

    def health(self) -> dict: ...  # {"up": bool, "publishing": bool | None, "error": str | None, ...}

    def recordings_bytes(self) -> int: ...


class NotStarted:
    """A camera of the site that has no runner yet (the engine still loading at start, or just added by a reload):
    down, so that /healthz does not say ok before every camera has been seen up."""

    def __init__(self, name: str) -> None:
        self.name = name

    def counts(self) -> dict[str, int]:
        return {"frames_in": 0, "frames_out": 0, "dropped": 0, "reconnects": 0}

    def health(self) -> dict:
        return {"up": False, "publishing": None, "error": "starting"}

    def recordings_bytes(self) -> int:
        return 0


class EngineView(Protocol):
    model: str

    def batch_seconds(self) -> float: ...


class SiteCollector:
    """Reads the cameras and engines at each scrape (no counter to keep in step by hand)."""

    def __init__(
        self, cameras: Callable[[], Iterable[CameraView]], engines: Callable[[], Iterable[EngineView]]
    ) -> None:
        self.cameras, self.engines = cameras, engines

    def collect(self):
        counters = {
            key: CounterMetricFamily(f"srstream_{key}", help_, labels=["camera"])
            for key, help_ in (
                ("frames_in", "frames decoded from the camera"),
                ("frames_out", "upscaled frames written"),
                ("frames_dropped", "frames dropped to keep latency bounded"),
                ("reconnects", "camera reconnects"),
            )
        }
        up = GaugeMetricFamily("srstream_camera_up", "1 when the camera sends frames", labels=["camera"])
        publishing = GaugeMetricFamily("srstream_restream_up", "1 while the re-stream is published", labels=["camera"])
        disk = GaugeMetricFamily("srstream_recordings_bytes", "bytes the camera's recordings take", labels=["camera"])
        restream_latency = GaugeMetricFamily(
            "srstream_restream_latency_seconds", "p95 of capture to published (recent frames)", labels=["camera"]
        )
        for camera in self.cameras():
            counts = camera.counts()
            for key, family in counters.items():
                family.add_metric([camera.name], counts["dropped" if key == "frames_dropped" else key])
            health = camera.health()
            up.add_metric([camera.name], 1.0 if health["up"] else 0.0)
            if health.get("publishing") is not None:
                publishing.add_metric([camera.name], 1.0 if health["publishing"] else 0.0)
            if health.get("restream_latency_p95_s") is not None:
                restream_latency.add_metric([camera.name], health["restream_latency_p95_s"])
            disk.add_metric([camera.name], camera.recordings_bytes())
        batch = GaugeMetricFamily(
            "srstream_engine_batch_seconds", "moving average of one engine call", labels=["model"]
        )
        for engine in self.engines():
            batch.add_metric([engine.model], engine.batch_seconds())
        yield from (*counters.values(), up, publishing, restream_latency, disk, batch)


class Metrics:
    """The registry, the latency histogram the encoders feed, and the HTTP server."""

    def __init__(
        self, cameras: Callable[[], Iterable[CameraView]], engines: Callable[[], Iterable[EngineView]]
    ) -> None:
        self.registry = CollectorRegistry()
        self.cameras = cameras
        self.registry.register(SiteCollector(cameras, engines))
        ProcessCollector(registry=self.registry)
        self.latency = Histogram(
            "srstream_latency_seconds",
            "seconds from capture to the upscaled frame written",
            ["camera"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.server: ThreadingHTTPServer | None = None

    def health(self) -> tuple[int, dict]:
        """(HTTP status, body) of /healthz."""
        cameras = {c.name: c.health() for c in self.cameras()}
        down = sorted(name for name, h in cameras.items() if not h["up"])
        body = {"status": "ok" if not down else "degraded", "down": down, "cameras": cameras}
        return (200 if not down else 503), body

    def serve(self, address: str) -> None:
        """Start answering on HOST:PORT in a thread of its own."""
        host, _, port = address.rpartition(":")
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry))
                elif self.path.split("?")[0] == "/healthz":
                    status, body = metrics.health()
                    self._send(status, "application/json", json.dumps(body, indent=2).encode())
                else:
                    self._send(404, "text/plain", b"srstream serve: /metrics or /healthz\n")

            def _send(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # a scrape every 15 s is not news
                pass

        try:
            self.server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        except OSError as exc:
            raise OSError(f"metrics {address}: cannot listen there ({exc.strerror or exc})") from None
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True, name="srstream-metrics").start()

    def close(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
