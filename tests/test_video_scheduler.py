"""srstream/video/scheduler.py and stream.py: a Stream on a real clip owns its plan and frames, and the scheduler's
batches take one frame from each input in turn (source, buffer and sink have their own test modules)."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time

import pytest

from srstream.engine import Upscaler
from srstream.output_size import OutputSize
from srstream.video import iter_upscaled
from srstream.video.scheduler import Scheduler, take_in_turn
from srstream.video.settings import Settings
from srstream.video.stream import Stream

from assets import CLIP


@pytest.fixture(scope="module")
def upscaler():
    return Upscaler("fast-x4", backend="cpu", batch_size=4)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """0.4 s (10 frames) of the real clip at 64x36, so that the engine is quick."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg CLI makes the derived clip")
    path = tmp_path_factory.mktemp("clips") / "tiny.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(CLIP), "-t", "0.4", "-vf", "scale=64:36", "-c:v",
                    "libx264", "-preset", "ultrafast", "-an", str(path)], check=True, timeout=60)
    return path


class _Queue:
    """take(kind) from a list, as a Stream takes from its buffer."""

    def __init__(self, frames: list[str]) -> None:
        self.frames = frames

    def take(self, kind: str) -> str | None:
        return self.frames.pop(0) if self.frames and self.frames[0].startswith(kind) else None


def test_take_in_turn_gives_every_input_its_share():
    a, b, c = _Queue(["x1", "x2", "x3"]), _Queue(["x4", "y5"]), _Queue(["y6"])
    parts = take_in_turn([a, b, c], "x", 4)
    assert [(q, frames) for q, frames in parts] == [(a, ["x1", "x2", "x3"]), (b, ["x4"])]
    assert take_in_turn([_Queue(["x1", "x2"]), _Queue(["x3", "x4"])], "x", 3)[0][1] == ["x1", "x2"]


def test_a_stream_owns_its_plan_and_its_frames(tiny_clip, upscaler):
    settings = Settings(batch=4, live=False)
    stream = Stream(str(tiny_clip), None, upscaler, settings, threading.Condition())
    assert stream.exception is None and stream.stats.size_in == (64, 36) and not stream.live
    stream.start()
    deadline = time.monotonic() + 30
    while (frame := stream.ready_frame(time.monotonic(), 0.0)) is None and time.monotonic() < deadline:
        time.sleep(0.01)
    kind = stream.batch_kind(frame)
    assert kind.size_out == (256, 144) and stream.stats.size_out == (256, 144)
    assert stream.take(kind) is frame
    stream.close()
    assert stream.stats.error is None and not stream.active


def test_batches_take_one_frame_from_each_input_in_turn(tiny_clip, upscaler):
    settings = Settings(batch=4, live=False)
    wakeup = threading.Condition()
    streams = [Stream(str(tiny_clip), None, upscaler, settings, wakeup) for _ in range(2)]
    scheduler = Scheduler(streams, upscaler, settings, wakeup)
    seen: dict[Stream, list[int]] = {s: [] for s in streams}
    try:
        for batch, y in scheduler.batches():
            assert y.shape[0] == len(batch.frames) <= 4 and tuple(y.shape[2:]) == (144, 256)
            assert len({id(stream) for stream, _ in batch.parts}) == len(batch.parts)  # one part per input
            for stream, frames, part in batch.split(y):
                assert part.shape[0] == len(frames)
                seen[stream] += [f.pts for f in frames]
    finally:
        for stream in streams:
            stream.close()
    assert all(len(pts) == 10 and pts == sorted(pts) for pts in seen.values())


def test_iter_upscaled_keeps_the_size_asked_for(tiny_clip, upscaler):
    settings = Settings(batch=3, output_size=OutputSize(width=201, height=113))
    frames = list(iter_upscaled(str(tiny_clip), upscaler, settings))
    assert len(frames) == 10 and frames[0].rgb.shape == (113, 201, 3)  # no encoder: odd sides stay odd
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)
