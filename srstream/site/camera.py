"""One camera of a site for as long as the server runs: `CameraRunner` opens its input, hands the Stream to its
engine's scheduler, and when the camera cannot be opened (or the Stream ends for any reason but a stop) tries again
with back-off, for ever. Each run writes its own segments (named by its start, so a restart never overwrites one),
with their sidecars and the camera's limits (recordings.py), and the camera's own stream beside them
(original.py). Its counts and health are what the metrics and /healthz read.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from srstream.redact import redact
from srstream.site.config import Camera
from srstream.site.original import OriginalRecorder
from srstream.site.provenance import Provenance
from srstream.site.recordings import Recordings, Run, run_stem
from srstream.site.recovery import adopt
from srstream.video.settings import EncodeOptions
from srstream.video.source import classify
from srstream.video.stream import (
    LATENCY_SAMPLES,
    Progress,
    Settings,
    Stream,
    segment_list_of,
)

log = logging.getLogger("srstream.site")
BACKOFF_S = (1.0, 30.0)  # between attempts to open a camera that is away
UP_WITHIN_S = 5.0  # a camera is up while a frame came in this long ago


class ObservedLatencies(collections.deque):
    """The Stream's latency deque that also feeds a histogram (each frame's capture-to-written seconds)."""

    def __init__(self, observe: Callable[[float], None] | None) -> None:
        super().__init__(maxlen=LATENCY_SAMPLES)
        self.observe = observe

    def append(self, seconds: float) -> None:
        super().append(seconds)
        if self.observe is not None:
            self.observe(seconds)


class CameraRunner(threading.Thread):
    """Runs `camera` through `engine` (an EngineGroup: upscaler, intake, wakeup) until `stop()`."""

    def __init__(
        self,
        camera: Camera,
        engine,
        provenance: Provenance,
        batch: int,
        observe_latency: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(daemon=True, name=f"srstream-camera-{camera.name}")
        self.camera, self.engine, self.provenance, self.batch = camera, engine, provenance, batch
        self.observe_latency = observe_latency
        self.recordings = (
            Recordings(camera.record, camera.name, camera.keep, camera.keep_bytes)
            if camera.record is not None
            else None
        )
        self.stream: Stream | None = None  # the current run's
        self._stopping = threading.Event()
        self._done = {"frames_in": 0, "frames_out": 0, "dropped": 0, "reconnects": 0}  # of finished runs
        self.error: str | None = None
        self.last_frame = 0.0
        self.ended = False  # a file input that has been read to its end
        self.runs = 0
        self.since: str | None = None  # when the current run started (UTC, ISO 8601)
        self._lock = threading.Lock()  # the finished runs' counts and the current Stream change together
        self._network = classify(camera.input).network

    def stop(self) -> None:
        """Finish the current segment and stop (returns at once; `join` to wait)."""
        self._stopping.set()
        if self.stream is not None:
            self.stream.stop_reading()

    def counts(self) -> dict[str, int]:
        """Frames in, out, dropped and reconnects over every run of this camera (never falling: Prometheus
        counters)."""
        with self._lock:
            return _plus(self._done, self.stream.progress() if self.stream is not None else None)

    def health(self) -> dict:
        """Up (a frame within UP_WITHIN_S), publishing (None without a restream), the last error (no credentials)."""
        stream = self.stream
        up = stream is not None and stream.active and time.monotonic() - self.last_frame < UP_WITHIN_S
        publisher = stream.publisher if stream is not None else None
        publishing = None if self.camera.restream is None else bool(publisher is not None and publisher.up)
        latency = publisher.latency_p95 if publisher is not None else None
        return {
            "up": up,
            "publishing": publishing,
            "restream_latency_p95_s": latency,
            "ended": self.ended,
            "runs": self.runs,
            "since": self.since,
            "error": None if up or self.error is None else redact(self.error),
        }

    def recordings_bytes(self) -> int:
        return self.recordings.bytes_used() if self.recordings is not None else 0

    @property
    def name(self) -> str:
        return self.camera.name

    @name.setter
    def name(self, value: str) -> None:
        # Thread.name is writable; a runner's name is its camera's.
        raise AttributeError(f"a camera runner is named by its camera ({self.camera.name}); it cannot be renamed")

    def run(self) -> None:
        """Run the camera for ever; an unexpected error in one run is logged and the camera starts again."""
        while not self._stopping.is_set():
            try:
                self._run()
                return
            except Exception as exc:  # noqa: BLE001 - a service keeps its cameras: say what went wrong and go on
                log.error(
                    "srstream: %s: %s: %s; starting again", self.camera.name, type(exc).__name__, redact(str(exc))
                )
                self._stopping.wait(BACKOFF_S[1])

    def _run(self) -> None:
        if self.camera.record is not None and self.runs == 0:  # what an earlier writer left without a sidecar
            adopt(self.camera.record, self.camera.name)
        delay = BACKOFF_S[0]
        while not self._stopping.is_set():
            started = datetime.now(UTC)
            stream, recorder = self._open(started)
            if stream.exception is not None:
                self._note_error(stream.stats.error or str(stream.exception), first=delay == BACKOFF_S[0])
                self._stopping.wait(delay)
                delay = min(delay * 2, BACKOFF_S[1])
                continue
            delay = BACKOFF_S[0]
            self.runs += 1
            self.since = started.isoformat(timespec="seconds")
            self._watch(stream, recorder, started)
            if stream.stats.error and not self._stopping.is_set():
                self._note_error(stream.stats.error, first=True)
            if not self._network and not stream.stats.error:  # a file read to its end: nothing more will come
                self.ended = True
                return
            self._stopping.wait(BACKOFF_S[0])  # at least a second apart: each run's names carry its start second

    def _open(self, started: datetime) -> tuple[Stream, OriginalRecorder | None]:
        camera = self.camera
        stem = run_stem(camera.name, started)
        output: str | Path | None = camera.restream  # the site file gives record, restream or both
        recorder = None
        if camera.record is not None:
            camera.record.mkdir(parents=True, exist_ok=True)
            output = camera.record / f"{stem}.mp4"
            if camera.keep_original:
                recorder = OriginalRecorder(camera.record / stem, camera.segment_time)
        settings = Settings(
            options=EncodeOptions(codec=camera.codec, crf=camera.crf, preset=camera.preset),
            batch=self.batch,
            retries=-1,
            timeout_s=camera.timeout,
            segment_time=camera.segment_time if camera.record is not None else None,
            live=True,
            max_latency=camera.max_latency,
            crash_safe=True,
            restream=camera.restream,
            metadata=self.provenance.metadata(),
            segment_list=camera.record is not None,
            label=f"upscaled by srstream {self.provenance.model}" if camera.label else None,
        )
        stream = Stream(
            camera.input,
            output,
            self.engine.upscaler,
            settings,
            self.engine.wakeup,
            latencies=ObservedLatencies(self.observe_latency),
            tap=recorder,
        )
        return stream, recorder

    def _watch(self, stream: Stream, recorder: OriginalRecorder | None, started: datetime) -> None:
        """Hand `stream` to the engine and look after its recordings until it ends."""
        run = None
        if self.recordings is not None:
            if stream.output is None:
                raise RuntimeError(f"{self.camera.name}: recorded, but its stream has no output file")
            run = Run(segment_list_of(Path(stream.output)), started, self.provenance, originals=recorder)
            self.recordings.add_run(run)
        with self._lock:
            self.stream = stream
        self.error = None
        self.engine.add(stream)
        frames = -1
        while stream.active:
            if self._stopping.wait(0.5):
                stream.stop_reading()
            progress = stream.progress()
            if progress is not None and progress.decoded != frames:
                frames, self.last_frame = progress.decoded, time.monotonic()
            if self.recordings is not None:
                self.recordings.poll()
        if not stream.closed.wait(30):  # the last segment is finished and listed (or no engine is left to)
            stream.close()
        if recorder is not None:
            recorder.close()
        if run is not None and self.recordings is not None:
            self.recordings.end_run(run.listing)
        with self._lock:
            self._done = _plus(self._done, stream.progress())
            self.stream = None

    def _note_error(self, message: str, first: bool) -> None:
        self.error = message
        if first:  # once per outage, not at every attempt
            log.warning("srstream: %s: %s; trying again with back-off", self.camera.name, redact(message))


def _plus(counts: dict[str, int], progress: Progress | None) -> dict[str, int]:
    """`counts` with a run's progress added."""
    if progress is None:
        return dict(counts)
    return {
        "frames_in": counts["frames_in"] + progress.decoded,
        "frames_out": counts["frames_out"] + progress.written,
        "dropped": counts["dropped"] + progress.dropped,
        "reconnects": counts["reconnects"] + progress.reconnects,
    }
