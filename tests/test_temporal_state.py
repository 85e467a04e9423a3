"""A recurrent model's state through the video front door, on real footage: each frame continues from the one
before, streams batched together stay independent, and the state is forgotten at a cut, a gap, a reconnect,
dropped frames and a seek.

The model here is RecurrentSR started from fast-x4's weights, with its state path given seeded random weights,
so that the past visibly changes the output (the trained model's weights are not what these tests check: the
plumbing is); started from fast-x4 as it is, it must give exactly fast-x4's video."""
import threading
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from srstream.engine import EngineError, Upscaler
from srstream.video import iter_upscaled
from srstream.video.frames import Decoded
from srstream.video.recurrent_state import StreamMemory
from srstream.video.scheduler import Scheduler, Stream
from srstream.video.settings import Settings
from training.architectures.recurrent import RecurrentConfig, RecurrentSR
from training.weights import load_generator, save_weights

from assets import CLIP

FRAMES = 6


def recurrent_from_fast(path, seed: int | None) -> str:
    fast, descriptor = load_generator("fast-x4")
    model = RecurrentSR(RecurrentConfig(**descriptor.config))
    model.load_fast(fast.state_dict())
    if seed is not None:
        torch.manual_seed(seed)
        with torch.no_grad():
            model.past.weight.normal_(0, 0.02)
    return str(save_weights(model, path, {"name": path.stem}))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    """The real clip's first frames, losslessly."""
    return write_clip(tmp_path_factory.mktemp("clips") / "vtest.mov", lr_frames(CLIP, FRAMES))


@pytest.fixture(scope="module")
def remembering(tmp_path_factory):
    return Upscaler(recurrent_from_fast(tmp_path_factory.mktemp("m") / "rec-x4", seed=0), backend="cpu",
                    precision="fp32", batch_size=4)


def lr_frames(path=CLIP, count: int = FRAMES) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(count), container.decode(video=0))]
    return frames


def write_clip(path, frames: list[np.ndarray]) -> str:
    """A lossless RGB clip (PNG in QuickTime), so that the pipeline's decode and ours give the same pixels."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("png", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "rgb24"
        for rgb in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        out.mux(stream.encode())
    return str(path)


def upscaled(source: str, upscaler: Upscaler, count: int = FRAMES) -> np.ndarray:
    return np.stack([d.rgb for _, d in zip(range(count), iter_upscaled(source, upscaler))]).astype(np.int16)


def by_hand(frames: list[np.ndarray], upscaler: Upscaler) -> np.ndarray:
    """Each decoded frame through Upscaler.step, carrying the state, as the scheduler should."""
    state, out = None, []
    for rgb in frames:
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        y, state = upscaler.step(x, state)
        out.append((y[0].permute(1, 2, 0).numpy() * 255).round().astype(np.int16))
    return np.stack(out)


def test_started_from_fast_x4_it_upscales_video_exactly_as_fast_x4(tmp_path):
    plain = Upscaler(recurrent_from_fast(tmp_path / "rec-x4", seed=None), backend="cpu", precision="fp32")
    fast = Upscaler("fast-x4", backend="cpu", precision="fp32")
    assert np.abs(upscaled(str(CLIP), plain) - upscaled(str(CLIP), fast)).max() <= 1


def test_each_frame_continues_from_the_one_before(remembering, clip):
    got = upscaled(clip, remembering)
    frames = lr_frames(clip)
    assert np.abs(got - by_hand(frames, remembering)).max() <= 1
    no_past = np.stack([by_hand([f], remembering)[0] for f in frames])
    assert np.abs(got[0] - no_past[0]).max() <= 1  # the first frame has no past
    assert np.abs(got[1:] - no_past[1:]).mean() > 0.5  # the others do, and it shows


def test_two_cameras_batched_together_stay_independent(remembering, clip, tmp_path):
    flipped = write_clip(tmp_path / "flipped.mov", [f[:, ::-1].copy() for f in lr_frames()])
    settings = Settings(batch=4, retries=0, live=False)
    wakeup = threading.Condition()
    streams = [Stream(src, None, remembering, settings, wakeup) for src in (clip, flipped)]
    outputs, sizes = {s: [] for s in streams}, []
    for batch, y in Scheduler(streams, remembering, settings, wakeup).batches():
        sizes.append([len(frames) for _, frames in batch.parts])
        for stream, _frames, part in batch.split(y):
            outputs[stream] += [rgb.astype(np.int16) for rgb in stream.pixels(part)]
    assert sorted({len(s) for s in sizes})[-1:] == [2] and all(n == 1 for s in sizes for n in s), sizes
    for stream, source in zip(streams, (clip, flipped)):
        alone = by_hand(lr_frames(source, len(outputs[stream])), remembering)
        assert np.abs(np.stack(outputs[stream]) - alone).max() <= 1
        assert stream.memory.resets == 0


def test_the_past_is_forgotten_at_a_scene_cut(remembering, tmp_path):
    first, second = lr_frames(count=4), [255 - f for f in lr_frames(count=4)]  # a cut: another picture entirely
    clip = write_clip(tmp_path / "cut.mov", first + second)
    got = upscaled(clip, remembering, 8)
    frames = lr_frames(clip, 8)
    assert np.abs(got[:4] - by_hand(frames[:4], remembering)).max() <= 1
    assert np.abs(got[4:] - by_hand(frames[4:], remembering)).max() <= 1  # after the cut: as if a new stream


def memory_after(frames: list[tuple[int, int, int]], pixels: list[torch.Tensor]) -> StreamMemory:
    """A StreamMemory fed (pts, reconnects, dropped) with real frames, each given a state back."""
    memory = StreamMemory()
    for (pts, reconnects, dropped), x in zip(frames, pixels):
        memory.state_for(Decoded(pts, Fraction(1, 25)), x, reconnects, dropped)
        memory.keep(torch.zeros(64, *x.shape[-2:]))
    return memory


@pytest.mark.parametrize("events, resets", [
    ([(0, 0, 0), (1, 0, 0), (2, 0, 0), (3, 0, 0)], 0),  # steady
    ([(0, 0, 0), (1, 0, 0), (2, 1, 0), (3, 1, 0)], 1),  # a reconnect
    ([(0, 0, 0), (1, 0, 0), (2, 0, 3), (3, 0, 3)], 1),  # the live policy dropped frames
    ([(0, 0, 0), (1, 0, 0), (5, 0, 0), (6, 0, 0)], 1),  # a gap in the timestamps
    ([(0, 0, 0), (1, 0, 0), (2, 0, 0), (1, 0, 0)], 1),  # a seek back
])
def test_reconnects_drops_gaps_and_seeks_forget_the_past(events, resets):
    pixels = [torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in lr_frames(count=len(events))]
    assert memory_after(events, pixels).resets == resets


def test_tta_is_refused_for_a_recurrent_model(tmp_path):
    with pytest.raises(EngineError, match="tta"):
        Upscaler(recurrent_from_fast(tmp_path / "rec-x4", seed=None), backend="cpu", tta=True)
