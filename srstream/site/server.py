"""`srstream serve`: every camera of a site in one process, one engine per model (each with its scheduler thread,
batching across its cameras), metrics and health on one port, and a reload that restarts only what changed.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import replace

from srstream import defaults
from srstream.engine import Upscaler
from srstream.site.camera import CameraRunner
from srstream.site.config import Camera, Site
from srstream.site.metrics import CameraView, Metrics, NotStarted
from srstream.site.provenance import of_run, sha256_of
from srstream.video.scheduler import Scheduler
from srstream.video.settings import Settings
from srstream.video.stream import Stream
from training.weights import ModelLoadError, resolve_model_path

log = logging.getLogger("srstream.site")


def _weights_sha256(model: str) -> str | None:
    """The sha256 of the model's weights file (None for a model with no file of its own here)."""
    try:
        return sha256_of(resolve_model_path(model))
    except (ModelLoadError, OSError):
        return None


class EngineGroup:
    """One model's engine and the scheduler thread that batches its cameras' frames, for as long as it serves."""

    def __init__(self, model: str, upscaler: Upscaler, batch: int, max_latency: float) -> None:
        self.upscaler, self.model = upscaler, upscaler.spec.name
        self.weights_sha256 = _weights_sha256(model)  # once per engine: every camera's provenance names it
        self.intake: queue.Queue = queue.Queue()
        self.wakeup = threading.Condition()
        self.serving = threading.Event()
        self.serving.set()
        settings = Settings(batch=batch, max_latency=max_latency, live=True)
        self.scheduler = Scheduler([], upscaler, settings, self.wakeup, intake=self.intake, serving=self.serving)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"srstream-engine-{self.model}")
        self.thread.start()

    def _run(self) -> None:
        try:
            self.scheduler.run()
        except BaseException as exc:  # noqa: BLE001 - the server sees it and stops
            self.error = exc
            log.error("srstream: the engine for %s failed (%s)", self.model, exc)

    def add(self, stream: Stream) -> None:
        """Start upscaling `stream` (already open) with the others."""
        self.intake.put(stream)
        with self.wakeup:
            self.wakeup.notify_all()

    def batch_seconds(self) -> float:
        return self.scheduler.batch_seconds

    def busy_seconds(self) -> float:
        return self.scheduler.busy_seconds

    def close(self) -> None:
        """Stop once its cameras have finished."""
        self.serving.clear()
        with self.wakeup:
            self.wakeup.notify_all()
        self.thread.join(timeout=30)


class Server:
    """A site's cameras, engines and metrics; `reload` applies a changed site file."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.engines: dict[str, EngineGroup] = {}
        self.cameras: dict[str, CameraRunner] = {}
        self.metrics = Metrics(self._camera_views, lambda: list(self.engines.values()))

    def _camera_views(self) -> list[CameraView]:
        """The running cameras and, as down, the site's cameras not started yet: the metrics port opens before
        the first engine has loaded, and /healthz must not say ok while no camera runs."""
        waiting = [NotStarted(name) for name in self.site.cameras if name not in self.cameras]
        return [*self.cameras.values(), *waiting]

    @property
    def failed(self) -> BaseException | None:
        """An engine's error, which ends the server."""
        return next((e.error for e in self.engines.values() if e.error is not None), None)

    def start(self) -> None:
        """Open the metrics port and start every camera (each opens its input in its own thread)."""
        if self.site.metrics:
            self.metrics.serve(self.site.metrics)
        for camera in self.site.cameras.values():
            self._start(camera)

    def model_of(self, camera: Camera) -> str:
        """The camera's model, or the video default for the site's backend."""
        return camera.model or defaults.video_model(self.site.backend, self.site.precision, defaults.SCALE)

    def _engine(self, model: str) -> EngineGroup:
        if model not in self.engines:
            latency = min(c.max_latency for c in self.site.cameras.values())
            upscaler = Upscaler(
                model, backend=self.site.backend, batch_size=self.site.batch, precision=self.site.precision
            )
            log.warning("srstream: engine %s x%d on %s", upscaler.spec.name, upscaler.scale, upscaler.label)
            self.engines[model] = EngineGroup(model, upscaler, self.site.batch, latency)
        return self.engines[model]

    def _start(self, camera: Camera) -> None:
        model = self.model_of(camera)
        engine = self._engine(model)
        settings = {
            "codec": camera.codec,
            "crf": camera.crf,
            "preset": camera.preset,
            "segment_time": camera.segment_time,
            "max_latency": camera.max_latency,
            "label": camera.label,
            "backend": engine.upscaler.backend_name,
            "precision": engine.upscaler.precision,
            "scale": engine.upscaler.scale,
        }
        provenance = of_run(camera.name, camera.input, engine.model, engine.weights_sha256, settings)
        name = camera.name
        runner = CameraRunner(
            camera, engine, provenance, self.site.batch, lambda s: self.metrics.latency.labels(name).observe(s)
        )
        self.cameras[camera.name] = runner
        runner.start()

    def tick(self) -> None:
        """Called by the serve loop between signals (nothing to do in one process)."""

    def reload(self, site: Site) -> list[str]:
        """Restart the cameras that changed, start new ones, stop removed ones; the others run on. The names of
        the cameras restarted, started or stopped."""
        for key in ("metrics", "backend", "precision", "batch"):
            if getattr(site, key) != getattr(self.site, key):
                log.warning("srstream: %s: server.%s changed; it takes effect at the next start", site.path, key)
        old = self.site.cameras
        touched = sorted(n for n in set(old) | set(site.cameras) if old.get(n) != site.cameras.get(n))
        for name in touched:
            if name in self.cameras:
                self.cameras[name].stop()
        for name in touched:
            if name in self.cameras:
                self.cameras[name].join()  # listed (as down) until replaced, so /healthz never loses it
        self.site = replace(self.site, cameras=site.cameras, path=site.path)
        for name in touched:
            if name in site.cameras:
                self._start(site.cameras[name])
            else:
                self.cameras.pop(name, None)
        for model in [m for m in self.engines if all(self.model_of(c) != m for c in site.cameras.values())]:
            self.engines.pop(model).close()
        return touched

    def stop(self) -> None:
        """Finish every camera's segment, then stop the engines and the metrics port."""
        for runner in self.cameras.values():
            runner.stop()
        for runner in self.cameras.values():
            runner.join()
        for engine in self.engines.values():
            engine.close()
        self.metrics.close()
