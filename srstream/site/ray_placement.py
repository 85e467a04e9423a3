"""`srstream serve SITE.toml --ray ADDRESS`: the site's cameras placed on a Ray cluster's nodes. Each alive node
gets one `SiteWorker` actor per GPU (one on a node without), each with one engine per model, running a Server for
the cameras given to it. This process keeps the placement: a new camera goes to the worker whose engine is least busy
(engine-seconds a second, measured by the workers), and every POLL_S it asks each worker how its cameras are; a worker
that does not answer (its node died) is dropped and its cameras start on the others. Metrics and /healthz are
served here, for the whole site.

Recordings are written by the node that runs the camera, at the path the site file gives: point it at storage the
nodes share.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from srstream.ray_tasks import connect
from srstream.site.config import Camera, Site
from srstream.site.metrics import Metrics
from training.logs import log_to_stderr

log = logging.getLogger("srstream.site")
POLL_S = 2.0
ANSWER_S = 10.0  # a worker that takes longer than this to answer is taken for dead


class SiteWorker:
    """One node's Server (as a Ray actor): cameras are added and removed one at a time."""

    def __init__(self, site: Site) -> None:
        from srstream.site.server import Server

        log_to_stderr(level=logging.WARNING)
        self.server = Server(replace(site, metrics=None, cameras={}))
        self.started = time.monotonic()

    def place(self, cameras: dict[str, Camera]) -> None:
        """Run exactly these cameras (the changed ones restart, the others run on)."""
        self.server.reload(replace(self.server.site, cameras=cameras))

    def status(self) -> dict[str, Any]:
        """Each camera's counts and health, and the engines' busy seconds so far."""
        return {
            "cameras": {
                name: {"counts": r.counts(), "health": r.health(), "bytes": r.recordings_bytes()}
                for name, r in self.server.cameras.items()
            },
            "busy": sum(e.busy_seconds() for e in self.server.engines.values()),
            "batch": {e.model: e.batch_seconds() for e in self.server.engines.values()},
            "clock": time.monotonic() - self.started,
        }

    def stop(self) -> None:
        self.server.stop()


class _CameraProxy:
    """A camera as the metrics read it, from the last status its worker sent."""

    def __init__(self, name: str, status: dict) -> None:
        self.name, self._status = name, status

    def counts(self) -> dict[str, int]:
        return self._status["counts"]

    def health(self) -> dict:
        return self._status["health"]

    def recordings_bytes(self) -> int:
        return self._status["bytes"]


class _EngineProxy:
    def __init__(self, model: str, seconds: float) -> None:
        self.model, self._seconds = model, seconds

    def batch_seconds(self) -> float:
        return self._seconds


class RaySite:
    """The placement of a site's cameras on the workers of a Ray cluster."""

    def __init__(self, site: Site, address: str) -> None:
        self.ray, _ = connect(address)
        self.site = site
        self.workers: dict[str, Any] = {}  # "NODE_ID/GPU_INDEX" -> actor
        self.placed: dict[str, dict[str, Camera]] = {}  # worker -> its cameras
        self.load: dict[str, tuple[float, float, float]] = {}  # worker -> (busy, clock, busy a second)
        self.last: dict[str, dict] = {}  # camera -> its last status
        self.moved: list[dict] = []  # cameras restarted elsewhere: when the worker was found dead, and which
        self._batch: dict[str, dict[str, float]] = {}  # worker -> model -> seconds of a batch
        self._polled = 0.0
        self.gone: set[str] = set()  # node ids whose workers died: not used again by this run
        self.metrics = Metrics(self._camera_views, self._engine_views)

    def _camera_views(self) -> list[_CameraProxy]:
        """Every camera of the site, as its worker last reported it (down until it has)."""
        unknown = {
            "counts": {"frames_in": 0, "frames_out": 0, "dropped": 0, "reconnects": 0},
            "bytes": 0,
            "health": {"up": False, "publishing": None, "error": "not reported by a worker yet"},
        }
        return [_CameraProxy(name, self.last.get(name, unknown)) for name in self.site.cameras]

    def _engine_views(self) -> list[_EngineProxy]:
        return [
            _EngineProxy(f"{model}@{worker[:8]}{worker[-2:]}", s)
            for worker, batch in self._batch.items()
            for model, s in batch.items()
        ]

    def start(self) -> None:
        """A worker on every alive node, the cameras spread over them, the metrics port open."""
        self._add_workers()
        for camera in self.site.cameras.values():
            self._place(camera)
        self._push(set(self.workers))
        if self.site.metrics:
            self.metrics.serve(self.site.metrics)

    def _add_workers(self) -> None:
        """A worker for each GPU of every alive node (one on a node without GPUs) not yet served."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        for node in self.ray.nodes():
            node_id = node["NodeID"]
            if not node["Alive"] or node_id in self.gone or any(w.startswith(node_id) for w in self.workers):
                continue
            gpus = int(node.get("Resources", {}).get("GPU", 0))
            actor = self.ray.remote(num_cpus=0.5, num_gpus=1 if gpus else 0, max_restarts=0)(SiteWorker)
            for index in range(max(1, gpus)):
                key = f"{node_id}/{index}"
                self.workers[key] = actor.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
                ).remote(self.site)
                self.placed[key] = {}
            log.warning(
                "srstream: %d worker(s) on node %s (%s)", max(1, gpus), node_id[:8], node.get("NodeManagerAddress")
            )

    def _place(self, camera: Camera) -> str:
        """Give `camera` to the least busy worker (by measured engine load, then by cameras); its worker id."""

        def busy(worker: str) -> tuple[float, int]:
            return (round(self.load.get(worker, (0, 0, 0))[2], 1), len(self.placed[worker]))

        worker = min(self.workers, key=busy)
        self.placed[worker][camera.name] = camera
        return worker

    def _push(self, keys: set[str]) -> None:
        """Send the placement to these workers; one that cannot take it is dropped and its cameras move on."""
        refs = {key: self.workers[key].place.remote(dict(self.placed[key])) for key in keys}
        failed = []
        for worker, ref in refs.items():
            try:
                self.ray.get(ref, timeout=120)
            except self.ray.exceptions.RayError:
                failed.append(worker)
        if failed:
            self._move_from(failed)

    def tick(self) -> None:
        """Called by the serve loop: poll the workers every POLL_S."""
        if time.monotonic() - self._polled >= POLL_S:
            self._polled = time.monotonic()
            self.poll()

    def poll(self) -> None:
        """Ask every worker how it is; move the cameras of those that do not answer."""
        refs = {key: actor.status.remote() for key, actor in self.workers.items()}
        dead = []
        for worker, ref in refs.items():
            try:
                status = self.ray.get(ref, timeout=ANSWER_S)
            except (
                self.ray.exceptions.RayActorError,
                self.ray.exceptions.GetTimeoutError,
                self.ray.exceptions.RayError,
            ):
                dead.append(worker)
                continue
            busy, clock = status["busy"], status["clock"]
            before = self.load.get(worker)
            rate = (busy - before[0]) / max(clock - before[1], 1e-6) if before else 0.0
            self.load[worker] = (busy, clock, rate)
            self._batch[worker] = status["batch"]
            for camera in status["cameras"].values():
                camera["health"]["node"] = worker.split("/")[0][:12]  # where it runs (/healthz)
            self.last.update(status["cameras"])
        if dead:
            self._move_from(dead)

    def _move_from(self, dead: list[str]) -> None:
        """Drop the dead workers (their nodes are not used again) and start their cameras on the others."""
        found = time.time()
        orphans = [camera for worker in dead for camera in self.placed.pop(worker).values()]
        self.gone.update(key.split("/")[0] for key in dead)  # Ray may list a dead node as alive for a while yet
        for worker in dead:
            self.ray.kill(self.workers.pop(worker))  # a worker too slow to answer must not run its cameras twice
            self.load.pop(worker, None)
            self._batch.pop(worker, None)
            log.warning(
                "srstream: worker %s is gone; moving its cameras: %s",
                worker[:8] + worker[-2:],
                ", ".join(c.name for c in orphans) or "none",
            )
        self._add_workers()  # a node that came back, or a new one
        if not self.workers:
            log.error("srstream: no Ray worker left; the cameras wait for a node")
            return
        touched = {self._place(camera) for camera in orphans}
        self._push(touched)
        self.moved += [{"camera": c.name, "found_dead_at": found} for c in orphans]

    def reload(self, site: Site) -> list[str]:
        """Restart changed cameras where they run, place new ones, remove those gone."""
        touched = sorted(
            n for n in set(self.site.cameras) | set(site.cameras) if self.site.cameras.get(n) != site.cameras.get(n)
        )
        keys = set()
        for worker, cameras in self.placed.items():
            for name in touched:
                if name in cameras:
                    del cameras[name]
                    keys.add(worker)
                    if name in site.cameras:
                        cameras[name] = site.cameras[name]
        for name in touched:
            if name in site.cameras and not any(name in c for c in self.placed.values()):
                keys.add(self._place(site.cameras[name]))
        self.site = replace(self.site, cameras=site.cameras)
        self._push(keys)
        return touched

    @property
    def failed(self) -> BaseException | None:
        return None

    def stop(self) -> None:
        """Every worker finishes its segments; then Ray is left."""
        refs = [worker.stop.remote() for worker in self.workers.values()]
        try:
            self.ray.get(refs, timeout=120)
        except self.ray.exceptions.RayError:
            pass
        self.metrics.close()
        self.ray.shutdown()
