"""The pieces under the video pipeline: input kinds, the live policy, the output plan, a Stream on a real clip and
the scheduler's batches (one frame from each input in turn)."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time

import av
import pytest

from srstream.engine import Upscaler
from srstream.output_size import OutputSize
from srstream.video import iter_upscaled, source
from srstream.video.buffer import LATENCY_MARGIN, oldest_worth_upscaling
from srstream.video.colour import Colour
from srstream.video.scheduler import Scheduler, take_in_turn
from srstream.video.settings import EncodeOptions, Settings
from srstream.video.sink import plan_output
from srstream.video.source import InputKind, VideoInputError, classify, is_live, is_video_input, open_input
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


def test_input_kinds_by_name():
    assert classify("rtsp://cam/1").kind == "stream" and is_live("rtsp://cam/1")
    assert classify("frames/f_%04d.png").kind == "sequence" and not is_live("frames/f_%04d.png")
    assert classify("clip.mp4").kind == "file" and is_video_input("clip.mp4") and not is_video_input("photo.png")
    with pytest.raises(VideoInputError, match="no such file"):
        open_input("/nonexistent/clip.mp4")


def test_a_new_input_kind_is_one_class(monkeypatch):
    class Dash(InputKind):  # stands in for `-` (a pipe): here it reads the real clip
        kind = "pipe"

        @staticmethod
        def matches(name: str) -> bool:
            return name == "-"

        def open(self, timeout_s: float) -> av.container.InputContainer:
            return av.open(str(CLIP))

    monkeypatch.setattr(source, "INPUT_KINDS", (Dash, *source.INPUT_KINDS))
    assert classify("-").kind == "pipe" and is_video_input("-") and not is_live("-")
    with open_input("-") as container:
        assert container.streams.video[0].codec_context.width == 320


def test_live_policy_keeps_what_can_still_be_written_in_time():
    # 2 s allowed, 0.5 s an engine call, 0.2 s in the encoder: a frame must have been captured after now - 1.2 s.
    assert oldest_worth_upscaling(100.0, 2.0, 0.5, 0.2) == pytest.approx(100.0 - (2.0 * LATENCY_MARGIN - 0.7))


def test_output_plan_rounds_for_the_pixel_format_and_keeps_10_bit():
    eight, ten = Colour(1, 1, 8), Colour(1, 1, 10)
    plan = plan_output(EncodeOptions(), eight, (401, 225))
    assert plan.pix_fmt == "yuv420p" and plan.size == (402, 226)
    assert plan_output(EncodeOptions(), ten, (640, 360)).pix_fmt == "yuv420p10le"
    assert plan_output(EncodeOptions(pix_fmt="yuv422p"), eight, (401, 225)).size == (402, 225)


def test_output_plan_falls_back_where_nvenc_cannot_open():
    plan = plan_output(EncodeOptions(codec="h264_nvenc", preset="p4"), Colour(1, 1, 8), (640, 360))
    if plan.options.codec == "h264_nvenc":
        pytest.skip("this machine has NVENC")
    assert plan.options.codec == "libx264" and plan.options.preset == "medium" and plan.pix_fmt == "yuv420p"


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
    frames = list(iter_upscaled(str(tiny_clip), upscaler, Settings(batch=3, output_size=OutputSize(width=201, height=113))))
    assert len(frames) == 10 and frames[0].rgb.shape == (113, 201, 3)  # no encoder: odd sides stay odd
    assert [f.pts for f in frames] == sorted(f.pts for f in frames)
