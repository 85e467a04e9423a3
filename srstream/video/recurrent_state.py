"""A recurrent model's memory of one stream: the state it carries from frame to frame, and when to forget it.

The engine is stateless (`Upscaler.step` takes states and returns new ones); each Stream owns one StreamMemory,
as Triton's sequence batcher keeps one slot per sequence. The state is forgotten, so the next frame starts with
no past, where the past no longer describes the present:

- a scene cut (the frame's coarse luma differs from the last one's by more than CUT_THRESHOLD),
- a reconnect (the decoder's count rose),
- dropped frames (the live policy's drop count rose) or a gap in the timestamps (more than GAP_FACTOR frame
  periods since the last frame),
- a seek (timestamps going back),
- a change of frame size.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import torch
from torch.nn import functional as F

from srstream.video.frames import Decoded

log = logging.getLogger("srstream.video")

CUT_THRESHOLD = 0.12  # mean absolute change of 32x18 luma in [0, 1]; camera motion stays well under it
GAP_FACTOR = 1.5  # frame periods between two frames beyond which some were lost
THUMB = (18, 32)


def thumbnail(frame: torch.Tensor) -> torch.Tensor:
    """(C, H, W) in [0, 1] -> its coarse luma (18, 32): what a cut is judged on."""
    return F.adaptive_avg_pool2d(frame.float().mean(0, keepdim=True), THUMB)[0]


class StreamMemory:
    """One stream's recurrent state and the evidence for forgetting it."""

    def __init__(self) -> None:
        self.state: torch.Tensor | None = None
        self.resets = 0  # how many times the state was forgotten (a stream's start not counted)
        self._pts: int | None = None
        self._period: Fraction | None = None  # the smallest interval seen between two frames, in seconds
        self._thumb: torch.Tensor | None = None
        self._reconnects = self._dropped = 0

    def state_for(self, frame: Decoded, pixels: torch.Tensor, reconnects: int, dropped: int) -> torch.Tensor | None:
        """The state `frame` (its LR `pixels`, (C, H, W)) continues from, or None (no past), given the decoder's
        reconnect count and the buffer's drop count now."""
        reason = self._break(frame, pixels, reconnects, dropped)
        if reason is not None and self.state is not None:
            self.resets += 1
            log.debug("srstream: recurrent state reset at pts %d (%s)", frame.pts, reason)
        if reason is not None:
            self.state = None
        self._remember(frame, pixels, reconnects, dropped)
        return self.state

    def keep(self, state: torch.Tensor) -> None:
        """The state the engine returned for the last frame given to `state_for`."""
        self.state = state

    def _break(self, frame: Decoded, pixels: torch.Tensor, reconnects: int, dropped: int) -> str | None:
        if self.state is None:
            return "start"
        if reconnects != self._reconnects:
            return "reconnect"
        if dropped != self._dropped:
            return "dropped frames"
        if self.state.shape[-2:] != pixels.shape[-2:]:
            return "new frame size"
        if self._pts is not None:
            if frame.pts <= self._pts:
                return "seek"
            interval = (frame.pts - self._pts) * frame.time_base
            if self._period is not None and interval > GAP_FACTOR * self._period:
                return "gap"
        thumb = thumbnail(pixels)
        if self._thumb is not None and float((thumb - self._thumb.to(thumb.device)).abs().mean()) > CUT_THRESHOLD:
            return "scene cut"
        return None

    def _remember(self, frame: Decoded, pixels: torch.Tensor, reconnects: int, dropped: int) -> None:
        if self._pts is not None and frame.pts > self._pts:
            interval = (frame.pts - self._pts) * frame.time_base
            self._period = interval if self._period is None else min(self._period, interval)
        self._pts, self._thumb = frame.pts, thumbnail(pixels)
        self._reconnects, self._dropped = reconnects, dropped
