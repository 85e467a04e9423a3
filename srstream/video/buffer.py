"""The buffer between one decoder and the scheduler, and the live policy that keeps a camera live.

A file is read as fast as the engine takes it: the buffer is a bounded queue and a full one makes the decoder wait.
A live stream is never made to wait (the socket is read at the camera's pace, with no backpressure into TCP): a full
buffer drops its oldest frame, and before each engine call its stream drops the frames that could no longer be
written within `max_latency` of their capture (`oldest_worth_upscaling`). Every drop is counted.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

from srstream.video.frames import Decoded

LATENCY_MARGIN = 0.95  # of max_latency planned for, so that the 95th percentile stays within it


def oldest_worth_upscaling(now: float, max_latency: float, engine_seconds: float, encoder_lag: float) -> float:
    """The capture time (time.monotonic() seconds) before which a live frame is stale: it could not be written
    within `max_latency` of its capture any more, after an engine call and its encoder's lag, with a margin."""
    return now - (max_latency * LATENCY_MARGIN - engine_seconds - encoder_lag)


class FrameBuffer:
    """A FIFO of decoded frames, passthrough packets and the decoder's end marker."""

    def __init__(self, capacity: int, live: bool, wakeup: threading.Condition | None = None) -> None:
        self.capacity = max(1, capacity)
        self.live = live
        self.dropped = 0
        self._items: collections.deque = collections.deque()
        self._lock = threading.Condition()
        self._wakeup = wakeup  # the scheduler's: told whenever something arrives

    def put(self, item: object, stop: threading.Event) -> bool:
        """Append `item`; a file's decoder waits for room (False if stopped meanwhile), a live one never waits."""
        with self._lock:
            frames = sum(isinstance(i, Decoded) for i in self._items) if self.live else len(self._items)
            while not self.live and frames >= self.capacity:
                if stop.is_set():
                    return False
                self._lock.wait(0.2)
                frames = len(self._items)
            if self.live and isinstance(item, Decoded) and frames >= self.capacity:
                self._drop_oldest_frame()
            self._items.append(item)
        self._notify()
        return True

    def _drop_oldest_frame(self) -> None:
        for i, old in enumerate(self._items):
            if isinstance(old, Decoded):
                del self._items[i]
                self.dropped += 1
                return

    def _notify(self) -> None:
        if self._wakeup is not None:
            with self._wakeup:
                self._wakeup.notify_all()

    def head(self) -> object | None:
        """The first item, or None when empty."""
        with self._lock:
            return self._items[0] if self._items else None

    def pop(self) -> object:
        """Remove and return the first item (there must be one)."""
        with self._lock:
            item = self._items.popleft()
            self._lock.notify_all()
            return item

    def pop_if(self, wanted: Callable[[object], bool]) -> object | None:
        """Remove and return the first item if `wanted(item)`, else None; checked and taken under one lock, so a
        live decoder dropping its oldest frame meanwhile cannot swap it for another."""
        with self._lock:
            if not self._items or not wanted(self._items[0]):
                return None
            item = self._items.popleft()
            self._lock.notify_all()
            return item

    def drop_stale(self, oldest_capture: float) -> int:
        """Drop the frames captured before `oldest_capture` (time.monotonic() seconds), but never the newest frame:
        however slow the engine, it always has the latest frame to work on. Packets of other streams (a file's
        audio, read live) stay, in order. Returns how many frames were dropped."""
        with self._lock:
            frames = [item for item in self._items if isinstance(item, Decoded)]
            stale = set()
            for frame in frames[:-1]:  # in capture order: the first recent one ends the stale run
                if frame.captured >= oldest_capture:
                    break
                stale.add(id(frame))
            if stale:
                self._items = collections.deque(item for item in self._items if id(item) not in stale)
                self.dropped += len(stale)
                self._lock.notify_all()
        return len(stale)


class CaptureClock:
    """Estimates when each frame was captured, on this machine's monotonic clock, from its timestamp: the earliest
    arrival relative to the stream clock sets the offset (the transport delay is taken as its minimum)."""

    def __init__(self) -> None:
        self.offset: float | None = None

    def capture(self, pts_seconds: float, received: float | None = None) -> float:
        """The estimated capture time of a frame `pts_seconds` into the stream, received at `received`."""
        received = time.monotonic() if received is None else received
        gap = received - pts_seconds
        if self.offset is None or gap < self.offset:
            self.offset = gap
        return pts_seconds + self.offset

    def reset(self) -> None:
        """After a reconnect the camera's clock and ours meet again."""
        self.offset = None
