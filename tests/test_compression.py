"""Compression facts (issue 27, point 1): the decoder's QP map read from real encodes, carried from the source
through the scheduler to the engine, the blind estimate where the decoder says nothing, and the fallback on bad
side data."""
from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Mapping

import av
import numpy as np
import pytest
import torch

from training import compression
from training.codec import Encoding, compress_with_facts, decode_with_facts, encode

from assets import CLIP, DATA


def real_frames(count: int = 6) -> np.ndarray:
    with av.open(str(CLIP)) as c:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(count), c.decode(video=0))]
    return np.stack(frames)


def _encode(frames: np.ndarray, codec: str, options: dict[str, str], bit_rate: int = 0) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = options
        if bit_rate:
            stream.bit_rate = bit_rate
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return buffer.getvalue()


def test_h264_constant_qp_is_read_back_block_by_block():
    frames = real_frames(4)
    data = _encode(frames, "libx264", {"qp": "30", "bf": "0", "g": "4",
                                       "x264-params": "ipratio=1.0:pbratio=1.0:aq-mode=0"})
    _decoded, facts = decode_with_facts(data)
    first = facts[0]
    assert first is not None and first.source == "decoder" and first.picture == "I"
    assert first.qp.shape == (12, 20)  # 180x320 in 16-px macroblocks
    assert all(f is not None and np.all(f.qp == 30) for f in facts)  # every block of every frame at that QP
    assert [f.picture for f in facts] == ["I", "P", "P", "P"]


def test_a_higher_crf_gives_a_higher_qp_map_and_the_plane_is_qp_over_51():
    frames = real_frames(4)
    low = compress_with_facts(frames, Encoding("libx264", 18, "medium", bframes=2))[1]
    high = compress_with_facts(frames, Encoding("libx264", 35, "medium", bframes=2))[1]
    assert np.mean([f.mean_qp for f in high]) > np.mean([f.mean_qp for f in low]) + 10
    plane = high[0].plane(180, 320)
    assert plane.shape == (180, 320) and plane.dtype == np.float32
    assert np.allclose(plane[:16, :16], high[0].qp[0, 0] / 51) and np.allclose(plane[-1, -1], high[0].qp[-1, -1] / 51)


@pytest.mark.parametrize("codec", ["mpeg2video", "mpeg4"])
def test_mpeg_quantisers_come_per_block_and_rise_as_the_bitrate_falls(codec):
    frames = real_frames(30)  # the rate control needs some frames to settle
    coarse, fine = ([f for f in decode_with_facts(_encode(frames, codec, {"g": "12"}, rate))[1][10:] if f]
                    for rate in (50_000, 3_000_000))
    assert coarse and fine and all(f.qp.shape == (12, 20) for f in coarse + fine)
    assert np.mean([f.mean_qp for f in coarse]) > np.mean([f.mean_qp for f in fine]) + 12  # 4x the step at least
    assert compression._h264_scale(np.array([4.0, 16.0]), "MPEG2").tolist() == [18.0, 30.0]


def test_hevc_exports_no_qp_so_the_facts_are_none():
    decoded, facts = decode_with_facts(encode(real_frames(2), Encoding("libx265", 28, "fast", bframes=0)))
    assert len(decoded) == 2 and facts == [None, None]


class _Side:
    def __init__(self, kind: str, qp_map=None, raises: bool = False):
        self.type, self.nb_blocks, self.qp = kind, 4, 20
        self.codec_type = type("T", (), {"name": "H264"})()
        self._map, self._raises = qp_map, raises

    def qp_map(self):
        if self._raises:
            raise RuntimeError("Expected frame size to match number of blocks in side data")
        return self._map


class _Frame:
    width, height, pict_type = 64, 32, 1

    def __init__(self, side):
        self.side_data = side


class _Type(str):
    """A side data type as PyAV 18.1.1's mapping gives it: an enum member with a name."""

    @property
    def name(self):
        return str(self)


class _SideDataMapping(Mapping):
    """PyAV 18.1.1's `frame.side_data`: a mapping whose iteration gives the side data's types, not the entries."""

    def __init__(self, *entries):
        self._by_type = {_Type(e.type.removeprefix("Type.")): e for e in entries}

    def __getitem__(self, kind):
        return self._by_type[kind]

    def __iter__(self):
        return iter(self._by_type)

    def __len__(self):
        return len(self._by_type)


@pytest.mark.parametrize("side, expected", [
    ([], None),  # nothing exported
    (_SideDataMapping(_Side("Type.VIDEO_ENC_PARAMS", np.full((2, 4), 31.0))), 31.0),  # PyAV 18.1.1's mapping
    (_SideDataMapping(), None),
    ([_Side("Type.VIDEO_ENC_PARAMS", raises=True)], 20.0),  # blocks that do not tile: the frame's base QP
    ([_Side("Type.VIDEO_ENC_PARAMS", np.full((2, 4), np.nan))], None),  # malformed values
    ([_Side("Type.VIDEO_ENC_PARAMS", "garbage")], 20.0),  # not a map: the frame's base QP
])
def test_missing_or_malformed_side_data_never_raises(side, expected):
    facts = compression.from_decoder(_Frame(side))
    assert (facts is None) if expected is None else facts.mean_qp == expected


def qp_model(tmp_path):
    """fast-x4 widened to take the QP (zero weights on it): the same output as fast-x4, whatever the QP."""
    from training.architectures.fast import FastConfig, FastSR
    from training.weights import load_generator, save_weights

    source, descriptor = load_generator("fast-x4")
    module = FastSR(FastConfig(qp_input=True))
    assert module.load_compatible(source.state_dict()) == []
    card = {**descriptor.card, "name": "qp-model", "config": {**descriptor.card["config"], "qp_input": True}}
    return save_weights(module, tmp_path / "qp-model.safetensors", card)


def test_a_model_widened_for_the_qp_starts_as_exactly_the_model_it_came_from(tmp_path):
    from srstream.engine import Upscaler

    qp_up, base = Upscaler(qp_model(tmp_path), backend="cpu", precision="fp32"), Upscaler("fast-x4", backend="cpu",
                                                                                          precision="fp32")
    frames = real_frames(2)
    facts = [compression.constant(40.0, 180, 320), compression.constant(5.0, 180, 320)]
    assert qp_up.spec.input_channels == 4 and qp_up.spec.descriptor.takes_qp
    assert np.array_equal(qp_up.upscale(frames, compression=facts), base.upscale(frames))


def test_a_qp_modulated_model_starts_as_its_source_and_its_card_rebuilds_the_modulation(tmp_path):
    """FiLM from the QP (FastConfig.qp_modulation): zero at the start, so the widened model is its source; once
    trained (here: its heads set by hand), the same frame upscales differently at QP 5 and QP 40, through the engine
    from the saved card and through the exported ONNX graph alike."""
    import onnxruntime as ort

    from srstream.engine import Upscaler
    from srstream.export import export_onnx
    from srstream.models import load_model
    from training.architectures.fast import FastConfig, FastSR
    from training.weights import load_generator, save_weights

    source, descriptor = load_generator("footage-qp-fast-x4")
    module = FastSR(FastConfig(qp_input=True, qp_modulation=8))
    assert module.load_compatible(source.state_dict()) == []
    frame = torch.from_numpy(real_frames(1)).permute(0, 3, 1, 2).float() / 255
    x = torch.cat([frame, torch.full((1, 1, 180, 320), 0.6)], 1)
    with torch.no_grad():
        assert torch.equal(module(x), source(x))
        for head in module.modulation.heads:
            head.bias.normal_(0, 0.05)
            head.weight.normal_(0, 0.05)
    card = {**descriptor.card, "name": "film-model", "config": {**descriptor.card["config"], "qp_modulation": 8}}
    path = save_weights(module, tmp_path / "film-model.safetensors", card)
    up = Upscaler(path, backend="cpu", precision="fp32")
    frames = real_frames(1)
    low, high = (up.upscale(frames, compression=[compression.constant(q, 180, 320)]) for q in (5.0, 40.0))
    assert np.abs(low.astype(int) - high).mean() > 0.5
    spec = load_model(path)
    onnx = export_onnx(spec, tmp_path / "film.onnx")
    small = x[:, :, :32, :48].numpy()
    got = ort.InferenceSession(str(onnx)).run(None, {"lr": small})[0]
    with torch.no_grad():
        assert np.allclose(got, spec.module(torch.from_numpy(small)).numpy(), atol=1e-4)


def test_the_engine_puts_each_frames_qp_plane_beside_it(tmp_path):
    from srstream.engine import Upscaler

    up = Upscaler(qp_model(tmp_path), backend="cpu", precision="fp32")
    x = torch.rand(2, 3, 32, 48)
    planes = up.qp_planes(x, [compression.constant(51.0, 32, 48), compression.constant(25.5, 32, 48)])
    assert planes.shape == (2, 1, 32, 48) and torch.allclose(planes[0], torch.ones(1)) and torch.allclose(
        planes[1], torch.full((1,), 0.5))


def test_the_video_front_door_carries_the_decoders_qp_to_the_engine(tmp_path, caplog):
    from srstream.cli import main

    model = qp_model(tmp_path)
    with av.open(str(CLIP)) as c:
        stream = c.streams.video[0]
        stream.codec_context.options = dict(compression.DECODER_OPTIONS)
        frames = list(c.decode(stream))
        within = [f for f in frames if float((f.pts - frames[0].pts) * f.time_base) < 0.2]  # -t 0.2, as the source
        start = [compression.from_decoder(f) for f in within]
    first = compression.averaged(start)[0]  # a file's first frames are given their mean (QpAverage.seed)
    with caplog.at_level(logging.WARNING, logger="srstream.video"):
        assert main(["upscale", str(CLIP), str(tmp_path / "o.mp4"), "-m", str(model), "-t", "0.2", "-q"]) == 0
    said = [r.getMessage() for r in caplog.records if "the QP for qp-model" in r.getMessage()]
    assert said == [f"srstream: {CLIP}: the QP for qp-model comes from the decoder (mean QP {first.mean_qp:.0f} "
                    "as frame 1 is given it)"]


def test_the_blind_estimate_rises_with_the_encoders_qp_on_real_footage():
    """The shipped estimator on real footage through libx264 at four CRFs: its mean QP rises with the decoder's,
    and stays within 8 of it from CRF 22 up (benchmarks/qp_estimate.py measures it on the held-out clips)."""
    frames = real_frames(6)
    estimates, truths = [], []
    for crf in (12, 22, 32, 42):
        decoded, facts = compress_with_facts(frames, Encoding("libx264", crf, "medium", bframes=0))
        estimates.append(np.mean([compression.estimated(d).mean_qp for d in decoded]))
        truths.append(np.mean([f.mean_qp for f in facts]))
    assert all(a < b for a, b in itertools.pairwise(estimates))
    assert all(abs(e - t) < 8 for e, t in zip(estimates[1:], truths[1:]))
    assert compression.estimated(decoded[0]).source == compression.ESTIMATE


def test_without_side_data_the_engine_estimates_the_qp_and_says_so_once(tmp_path, caplog):
    from srstream.cli import main

    model = qp_model(tmp_path)
    hevc = tmp_path / "hevc.mkv"
    hevc.write_bytes(encode(real_frames(6), Encoding("libx265", 30, "fast", bframes=0)))
    with caplog.at_level(logging.WARNING):
        assert main(["upscale", str(hevc), str(tmp_path / "o.mp4"), "-m", str(model), "-q"]) == 0
    said = [r.getMessage() for r in caplog.records if "QP" in r.getMessage()]
    assert len(said) == 2  # where it comes from, and the estimate's value once
    assert "comes from the engine: its decoder exports none" in said[0]
    assert "takes the codec's QP; none came with these frames: a blind estimate from the pixels (QP" in said[1]


def test_camera_training_clips_carry_the_decoders_qp_as_a_fourth_channel():
    from training.camera_data import CameraClips
    from training.camera_degrade import CameraSettings

    settings = CameraSettings(codec_p=1.0, codecs=("libx264",), x265_p=0.0, jpeg_p=0.0, crf=(30, 30))
    clips = CameraClips([DATA / "train"], 64, 4, settings, qp_plane=True)
    hr, lr = clips[0]
    _, _lr8, qp, _ = clips.clip_with_qp(0)
    assert hr.shape == (5, 3, 64, 64) and lr.shape == (5, 4, 16, 16)
    assert torch.allclose(lr[:, 3], torch.from_numpy(qp / 51).float().repeat_interleave(16, 1).repeat_interleave(16, 2))
    assert 25 < qp.mean() < 51


def test_camera_training_clips_can_give_every_frame_the_clips_mean_qp_as_the_front_door_does():
    from training.camera_data import CameraClips
    from training.camera_degrade import CameraSettings

    settings = CameraSettings(codec_p=1.0, codecs=("libx264",), x265_p=0.0, jpeg_p=0.0, crf=(30, 30), bframes=(2, 2))
    own = CameraClips([DATA / "train"], 64, 4, settings, qp_plane=True)
    mean = CameraClips([DATA / "train"], 64, 4, settings, qp_plane=True, qp_average=True)
    _, _lr8, qp, _ = own.clip_with_qp(0)
    assert np.ptp(qp.mean(axis=(1, 2))) > 0  # the I, P and B frames of the clip have other QPs
    _, low_own = own[0]
    _, low = mean[0]
    assert torch.equal(low[:, :3], low_own[:, :3])  # the same clip: only the QP plane differs
    plane = torch.from_numpy(qp.mean(axis=0) / 51).float().repeat_interleave(16, 0).repeat_interleave(16, 1)
    assert all(torch.allclose(low[t, 3], plane) for t in range(len(low)))


def _ibp_facts(count: int = 12) -> list:
    """The decoder's facts of real footage through libx264 as one GOP of I, P and B frames (CRF 30)."""
    frames = real_frames(count)[:, :96, :160]
    return compress_with_facts(frames, Encoding(crf=30, preset="medium", bframes=3))[1]


def test_a_streams_qp_is_averaged_over_its_frames_so_the_model_does_not_jump_with_the_picture_type():
    facts = _ibp_facts()
    assert {f.picture for f in facts} >= {"I", "P", "B"}
    smooth = compression.averaged(facts)
    mean = np.mean([f.qp for f in facts], axis=0)  # fewer frames than the window: every frame gets the clip's mean
    assert all(np.allclose(f.qp, mean, atol=1e-4) for f in smooth)
    assert [f.picture for f in smooth] == [f.picture for f in facts] and all(f.source == "decoder" for f in smooth)

    def jumps(seq):  # how far the frame's mean QP moves from one frame to the next
        return np.abs(np.diff([f.mean_qp for f in seq])).mean()

    assert jumps(facts) > 1.0 and jumps(smooth) < 0.5 * jumps(facts), (jumps(facts), jumps(smooth))


def test_a_files_first_frames_get_their_mean_and_the_running_mean_goes_on_from_it():
    """The look-ahead (QpAverage.seed): no settling from the I frame's low QP over the first frames."""
    facts = _ibp_facts(24)
    smooth = compression.averaged(facts, window=8)
    first = np.mean([f.qp for f in facts[:8]], axis=0)
    assert all(np.allclose(f.qp, first, atol=1e-4) for f in smooth[:8])
    assert np.allclose(smooth[8].qp, first + (facts[8].qp - first) / 8, atol=1e-4)
    assert compression.averaged([None, None]) == [None, None]


def test_the_average_forgets_after_its_window_and_at_a_new_size():
    average = compression.QpAverage(window=4)
    for _ in range(10):
        average(compression.constant(20.0, 32, 32))
    later = [average(compression.constant(40.0, 32, 32)).mean_qp for _ in range(12)]
    assert 20 < later[0] < later[3] < later[-1] and later[-1] > 39  # follows a lasting change within a few windows
    assert average(compression.constant(10.0, 64, 64)).mean_qp == 10.0  # another frame size: a new stream
    assert average(None) is None  # nothing known stays nothing (the engine estimates)


def test_the_video_source_reads_every_frames_qp_as_a_single_threaded_decoder_does():
    """Frame-threaded H.264 decoding exported some B frames' QP maps half-written (different from run to run); the
    source decodes with slice threads when it reads the QP. Five reads of the bundled clip, every frame checked."""
    import threading

    from srstream.video.buffer import FrameBuffer
    from srstream.video.frames import END
    from srstream.video.source import Decoder

    with av.open(str(CLIP)) as c:
        stream = c.streams.video[0]
        stream.codec_context.options = dict(compression.DECODER_OPTIONS)
        truth = [compression.from_decoder(f) for f in c.decode(stream)]
    want = compression.averaged(truth)
    for _ in range(5):
        buffer = FrameBuffer(10_000, live=False)  # its audio packets pass through it too
        Decoder(str(CLIP), buffer, None, 0, 5.0, threading.Event(), read_qp=True).run()
        got = []
        while (item := buffer.pop()) is not END:
            if hasattr(item, "compression"):
                got.append(item.compression)
        assert len(got) == len(want) == 50
        assert all(np.allclose(g.qp, w.qp, atol=1e-4) for g, w in zip(got, want))


def test_the_video_source_hands_on_the_streams_averaged_qp(tmp_path):
    import threading

    from srstream.video.buffer import FrameBuffer
    from srstream.video.frames import END, Decoded
    from srstream.video.source import Decoder

    clip = tmp_path / "ibp.mkv"
    clip.write_bytes(_encode(real_frames(12)[:, :96, :160], "libx264", {"crf": "30", "bf": "3"}))
    _, decoder_facts = decode_with_facts(clip.read_bytes())
    buffer = FrameBuffer(64, live=False)
    Decoder(str(clip), buffer, None, 0, 5.0, threading.Event(), read_qp=True).run()
    frames = []
    while (item := buffer.pop()) is not END:
        if isinstance(item, Decoded):
            frames.append(item)
    expected = compression.averaged(decoder_facts)
    assert len(frames) == len(expected) == 12
    for frame, want in zip(frames, expected):
        assert np.allclose(frame.compression.qp, want.qp) and frame.compression.picture == want.picture
