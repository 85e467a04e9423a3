"""One engine for several inputs: the scheduler picks frames of one kind across the Streams, calls the engine and
hands each Stream its share of the output. It keeps no state of any input; the Streams do (stream.py).

`Scheduler.batches` is the chain's batch -> engine step as a generator: each item is one engine call's frames and
output. `run` hands those to the Streams' encoders; `iter_upscaled` hands them to its caller. The oldest waiting
frame decides each call's kind, and frames of that kind are taken one from each input in turn (`take_in_turn`), so
every camera gets its share of a busy engine. Live inputs drop their stale frames before each call (their policy,
told how long a call takes); files are never dropped: their decoders wait instead. A recurrent model takes one
frame of each input a call (its next frame needs this one's state): each Stream's memory (memory.py) gives the
state its frame continues from, or none after a cut, a gap or a reconnect, and keeps the one that comes back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from srstream.engine import Upscaler
from srstream.video.frames import Decoded, to_device_rgb
from srstream.video.recurrent_state import StreamMemory
from srstream.video.settings import Settings
from srstream.video.stream import BatchKind, Stream
from training.compression import Compression

log = logging.getLogger("srstream.video")

__all__ = ["EngineCall", "Scheduler", "Settings", "Stream", "take_in_turn"]


@dataclass
class EngineCall:
    """The frames of one engine call: one kind, grouped by their Stream (in order within each)."""

    kind: BatchKind
    parts: list[tuple[Stream, list[Decoded]]]

    @property
    def frames(self) -> list[Decoded]:
        """Every frame, in the order the engine takes them."""
        return [frame for _, frames in self.parts for frame in frames]

    def split(self, y: torch.Tensor) -> Iterator[tuple[Stream, list[Decoded], torch.Tensor]]:
        """Each Stream's frames with its slice of the engine's output `y`."""
        start = 0
        for stream, frames in self.parts:
            yield stream, frames, y[start : start + len(frames)]
            start += len(frames)


def take_in_turn(
    streams: list[Stream], kind: BatchKind, batch: int, per_stream: int | None = None
) -> list[tuple[Stream, list[Decoded]]]:
    """Up to `batch` frames of `kind`, one from each of `streams` in turn until none has more (or each has given
    `per_stream`); the Streams that gave any, each with its frames."""
    taken: dict[Stream, list[Decoded]] = {stream: [] for stream in streams}
    open_streams, count = list(streams), 0
    while open_streams and count < batch:
        for stream in list(open_streams):
            if count == batch:
                break
            frame = None if per_stream is not None and len(taken[stream]) >= per_stream else stream.take(kind)
            if frame is None:
                open_streams.remove(stream)
            else:
                taken[stream].append(frame)
                count += 1
    return [(stream, frames) for stream, frames in taken.items() if frames]


class Scheduler:
    """Runs the engine for several Streams until all have ended (or on interrupt, finishes them all). With
    `waiting`, a callable giving the next Stream (or None), a new input starts whenever one ends, so that
    `concurrency` inputs run at once (srstream batch). With `intake` and `serving`, Streams come and go for as long
    as `serving` is set (srstream serve)."""

    def __init__(
        self,
        streams: list[Stream],
        upscaler: Upscaler,
        settings: Settings,
        wakeup: threading.Condition,
        on_batch: Callable[[Stream, int], None] | None = None,
        waiting: Callable[[], Stream | None] | None = None,
        concurrency: int = 0,
        intake: queue.Queue | None = None,
        serving: threading.Event | None = None,
    ) -> None:
        self.streams, self.upscaler, self.settings, self.wakeup = streams, upscaler, settings, wakeup
        self.on_batch = on_batch or (lambda stream, n: None)
        self.batch_seconds = 0.0  # moving average of one engine call
        self.batch_spread = 0.0  # moving average of its absolute deviation from that average
        self.frame_seconds = 0.0  # moving average of a call's time per frame
        self.busy_seconds = 0.0  # in engine calls, all told (its rise over wall time: how loaded the engine is)
        self.waiting, self.concurrency = waiting, concurrency
        self._qp_noted: set[Stream] = set()
        self._served: dict[Stream, float] = {}  # when each live input last had frames in a call
        # srstream serve: Streams arrive on `intake` at any time, and while `serving` is set the engine waits for
        # them even with none running; a finished one leaves the list (its owner keeps it).
        self.intake, self.serving = intake, serving

    def run(self) -> None:
        """Upscale into every Stream's output until all have ended; Ctrl-C finishes them all (marked interrupted)
        and is raised again."""
        try:
            for batch, y in self.batches():
                for stream, frames, part in batch.split(y):
                    if stream.active:
                        stream.emit(frames, part)
                        self.on_batch(stream, len(frames))
        except KeyboardInterrupt:
            for stream in self.streams:
                stream.interrupt()  # those already finished were complete
            log.warning("srstream: interrupted; finishing the outputs with the frames so far")
            raise
        finally:
            for stream in self.streams:
                stream.stop_reading()
            interrupted = False
            for stream in self.streams:  # every one, even if a Ctrl-C comes while one is being finished
                try:
                    stream.close(keep=True)
                except KeyboardInterrupt:
                    interrupted = True
            if interrupted:
                raise KeyboardInterrupt

    def batches(self) -> Iterator[tuple[EngineCall, torch.Tensor]]:
        """Each engine call's frames and output (N, 3, H, W), until every Stream has ended. Closing the Streams
        is the caller's."""
        for stream in self.streams:
            stream.start()
        first_sizes = {s.stats.size_in for s in self.streams if s.decoder is not None}
        for w, h in first_sizes:  # while the decoders start: the engine's graphs for what will come
            self.upscaler.prepare(h, w, min(self.settings.batch, self.upscaler.batch_size))
        while True:
            self._refill()
            if not any(s.active for s in self.streams) and not (self.serving and self.serving.is_set()):
                return
            batch = self._gather()
            if batch is None:
                with self.wakeup:
                    self.wakeup.wait(0.05)
                continue
            yield batch, self._upscale(batch)

    @property
    def call_estimate(self) -> float:
        """What the live deadline plans an engine call to take: its average and twice its spread, so that a call
        slower than usual (another process taking the cores) still lands within --max-latency."""
        return self.batch_seconds + 2 * self.batch_spread

    def _live_limit(self) -> int:
        """Frames in a live call: no more than half of --max-latency's worth of engine time (a full batch on a slow
        engine would make every frame in it late), and one until a call has been timed."""
        if not self.frame_seconds:
            return 1
        share = 0.5 * self.settings.max_latency / (self.frame_seconds + 2 * self.batch_spread / self.settings.batch)
        return max(1, min(self.settings.batch, int(share)))

    def _refill(self) -> None:
        if self.intake is not None:
            self.streams = [s for s in self.streams if s.active]
            self._served = {s: t for s, t in self._served.items() if s.active}
            while not self.intake.empty():
                stream = self.intake.get_nowait()
                self.streams.append(stream)
                stream.start()
        while self.waiting is not None and sum(s.active for s in self.streams) < self.concurrency:
            stream = self.waiting()
            if stream is None:
                self.waiting = None
                return
            self.streams.append(stream)
            stream.start()

    def _gather(self) -> EngineCall | None:
        now = time.monotonic()
        heads = {}
        for stream in self.streams:
            frame = stream.ready_frame(now, self.call_estimate)
            if frame is not None:
                heads[stream] = frame
        if not heads:
            return None
        # The oldest waiting frame decides the kind of this call; frames of that kind from other inputs ride along.
        # Live inputs go longest-unserved first: an engine too slow for all of them then drops frames evenly across
        # the cameras (by oldest frame, a camera whose encoder lags drops more, which makes its frames newer and
        # puts it last in every call: a few cameras would get almost nothing).
        live = any(s.live for s in heads)
        ready = sorted(
            heads, key=lambda s: (self._served.get(s, 0.0), heads[s].captured) if live else heads[s].captured
        )
        kind = ready[0].batch_kind(heads[ready[0]])
        limit = self._live_limit() if live else self.settings.batch
        parts = take_in_turn(ready, kind, limit, 1 if self.upscaler.spec.recurrent else None)
        for stream, _ in parts:
            self._served[stream] = now
        return EngineCall(kind, parts) if parts else None

    def _upscale(self, batch: EngineCall) -> torch.Tensor:
        started = time.perf_counter()
        x = to_device_rgb(batch.frames, self.upscaler, batch.kind.colour)
        compression = None
        if self.upscaler.spec.descriptor.takes_qp:
            self._note_qp_source(batch)
            compression = [d.compression for d in batch.frames]
        if self.upscaler.spec.recurrent:
            y = self._step(batch, x, compression)
        else:
            y = self.upscaler.upscale_tensor(x, batch.kind.size_out, compression)
        elapsed = time.perf_counter() - started
        self.busy_seconds += elapsed
        per_frame = elapsed / len(batch.frames)
        self.frame_seconds = per_frame if not self.frame_seconds else 0.8 * self.frame_seconds + 0.2 * per_frame
        if not self.batch_seconds:
            self.batch_seconds = elapsed
        else:
            self.batch_spread = 0.8 * self.batch_spread + 0.2 * abs(elapsed - self.batch_seconds)
            self.batch_seconds = 0.8 * self.batch_seconds + 0.2 * elapsed
        return y

    def _note_qp_source(self, batch: EngineCall) -> None:
        """Say once per input where a QP-taking model's QP comes from: the decoder, or a blind estimate."""
        for stream, frames in batch.parts:
            if stream not in self._qp_noted:
                self._qp_noted.add(stream)
                fact = frames[0].compression
                source = (
                    f"the decoder (mean QP {fact.mean_qp:.0f} as frame 1 is given it)"
                    if fact is not None
                    else "the engine: its decoder exports none"
                )
                log.warning("srstream: %s: the QP for %s comes from %s", stream.source, self.upscaler.spec.name, source)

    def _step(self, batch: EngineCall, x: torch.Tensor, compression: list[Compression | None] | None) -> torch.Tensor:
        # One frame per Stream (take_in_turn's per_stream): row i is parts[i]'s frame; no past = a zero row.
        states = [
            _memory(stream).state_for(frames[0], x[i], *stream.continuity())
            for i, (stream, frames) in enumerate(batch.parts)
        ]
        if all(s is None for s in states):
            state = None
        else:
            shape = next(s for s in states if s is not None).shape
            state = torch.stack([s if s is not None else x.new_zeros(shape) for s in states])
        y, new_states = self.upscaler.step(x, state, batch.kind.size_out, compression)
        if new_states is None:
            raise RuntimeError(f"{self.upscaler.spec.name}: the engine returned no state for a recurrent model")
        for i, (stream, _) in enumerate(batch.parts):
            _memory(stream).keep(new_states[i])
        return y


def _memory(stream: Stream) -> StreamMemory:
    """The recurrent model's state of `stream` (each Stream of a recurrent model has one)."""
    if stream.memory is None:
        raise RuntimeError(f"{stream.source}: no recurrent state kept for this input")
    return stream.memory
