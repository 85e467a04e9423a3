"""The live buffer between a decoder and the engine: stale frames are dropped but never the newest, so a stream
whose engine call takes longer than --max-latency still writes its latest frames; frames are checked and taken
under one lock."""
import json
import math
import shutil
import subprocess
import sys
import threading
from fractions import Fraction

import av
import pytest

from srstream.video.buffer import LATENCY_MARGIN, FrameBuffer, oldest_worth_upscaling
from srstream.video.frames import Decoded

from assets import ROOT, SAMPLE
from conftest import engine_fps, times_of


def real_frames(n: int) -> list[Decoded]:
    with av.open(str(SAMPLE)) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(n), c.decode(video=0))]
    return [Decoded(i, Fraction(1, 25), rgb=rgb, captured=i * 0.04) for i, rgb in enumerate(frames)]


def test_stale_frames_are_dropped_but_never_the_newest():
    buffer = FrameBuffer(10, live=True)
    stop = threading.Event()
    frames = real_frames(4)
    for frame in frames:
        buffer.put(frame, stop)
    assert buffer.drop_stale(0.05) == 2  # captured at 0 and 0.04 s
    assert buffer.drop_stale(10.0) == 1  # all are stale: the newest stays for the engine
    assert buffer.dropped == 3 and buffer.head() is frames[-1]
    assert buffer.drop_stale(10.0) == 0 and buffer.pop() is frames[-1]


def test_a_frame_is_taken_only_if_it_is_the_one_checked():
    buffer = FrameBuffer(10, live=True)
    frames = real_frames(2)
    for frame in frames:
        buffer.put(frame, threading.Event())
    assert buffer.pop_if(lambda item: item.pts == 1) is None and buffer.head() is frames[0]
    assert buffer.pop_if(lambda item: item.pts == 0) is frames[0]
    assert buffer.pop_if(lambda item: True) is frames[1] and buffer.pop_if(lambda item: True) is None


@pytest.mark.timeout(180)
def looped(clip, out, loops: int):
    """`clip` played `loops` more times in a row (packets copied, audio too): a longer real input."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("this machine's engine needs a clip longer than the sample: ffmpeg makes it")
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", str(loops), "-i", str(clip), "-c", "copy", str(out)],
                   check=True, timeout=60)
    return out


def test_an_engine_slower_than_max_latency_still_writes_the_latest_frames(tmp_path):
    # The sample clip read live (with its audio packets in the buffer) through srresnet-x4, whose engine call
    # takes longer on these cores than the 0.3 s allowed: the stale frames behind the audio packets are dropped,
    # the newest one always goes through, to the end of the clip, and latency stays near one engine call.
    # Its length follows from the engine's speed here (0.4 s a frame with bf16, 2.3 s in fp32 on AVX2): long
    # enough for several engine calls.
    call = 1 / engine_fps("srresnet-x4", 320, 180)
    seconds = max(3.0, 5 * call)
    clip = SAMPLE if seconds < 3.8 else looped(SAMPLE, tmp_path / "long.mp4", math.ceil(seconds / 4))
    out = tmp_path / "live.mp4"
    run = subprocess.run([sys.executable, "-m", "srstream.cli", "upscale", str(clip), str(out), "--live", "-m",
                          "srresnet-x4", "--backend", "cpu", "--max-latency", "0.3", "-t", f"{seconds:.1f}",
                          "--preset", "ultrafast", "--json", "-q"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120 + 3 * seconds)
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stdout)
    times = times_of(out)
    with av.open(str(out)) as c:
        assert c.streams.audio
    assert stats["dropped_frames"] > 0 and stats["frames_out"] == len(times) >= 3
    assert max(times) >= seconds - 2 * call - 0.5, times  # frames kept coming to the end, not only the first call's
    # near one engine call: waiting for the engine, then its call (a backlog behind the audio packets reached 2-5 s)
    assert stats["latency_p95_s"] < max(1.5, 2 * call + 1.0), (stats, call)


def test_live_policy_keeps_what_can_still_be_written_in_time():
    # 2 s allowed, 0.5 s an engine call, 0.2 s in the encoder: a frame must have been captured after now - 1.2 s.
    assert oldest_worth_upscaling(100.0, 2.0, 0.5, 0.2) == pytest.approx(100.0 - (2.0 * LATENCY_MARGIN - 0.7))
