"""The recurrent generator on real footage and real camera clips: it starts as fast-x4 whatever the state, the
trainer unrolls it over clips (the state path learns, through time) and resumes, and its ONNX graph matches torch."""
import json
from pathlib import Path

import av
import numpy as np
import torch

from srstream.export import INPUT, export_onnx
from srstream.models import load_model
from training.architectures.recurrent import RecurrentConfig, RecurrentSR, pack_state, unpack_state
from training.train import ClipUnroll, Trainer
from training.weights import load_generator, save_weights

from assets import CLIP


def real_frames(count: int = 3, h: int = 48, w: int = 64) -> torch.Tensor:
    """The clip's first frames, (N, 3, h, w) float in [0, 1], cropped where people walk."""
    with av.open(str(CLIP)) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(count), container.decode(video=0))]
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255
    return x[:, :, 60:60 + h, 100:100 + w].contiguous()


def recurrent_from_fast(seed: int | None = None) -> tuple[RecurrentSR, torch.nn.Module]:
    """RecurrentSR made from fast-x4 (its state path given seeded random weights when `seed`), and fast-x4."""
    fast, descriptor = load_generator("fast-x4")
    model = RecurrentSR(RecurrentConfig(**descriptor.config))
    model.load_fast(fast.state_dict())
    if seed is not None:
        torch.manual_seed(seed)
        with torch.no_grad():
            model.past.weight.normal_(0, 0.02)
    return model.eval(), fast


def test_made_from_fast_x4_it_is_fast_x4_whatever_the_state():
    model, fast = recurrent_from_fast()
    frames = real_frames()
    s = model.state_channels
    with torch.no_grad():
        want = fast(frames)
        state = None
        for t in range(len(frames)):  # the carried state, then a random one: neither may change the output
            sr, state = unpack_state(model(pack_state(frames[t:t + 1], state, s)), 3, 4)
            assert torch.allclose(sr, want[t:t + 1], atol=1e-5)
            assert state.abs().amax() > 0.1  # a real past was there to ignore
        noise = torch.rand(len(frames), s, *frames.shape[-2:])
        sr, _ = unpack_state(model(pack_state(frames, noise, s)), 3, 4)
    assert torch.allclose(sr, want, atol=1e-5)


def test_trainer_unrolls_real_camera_clips_through_time_and_resumes(tiny):
    sections = dict(data={"degradation": '"camera"', "patch_size": 64, "camera.frames": 2},
                    model={"architecture": '"recurrent"', "width": 64, "layers": 4, "hidden": 13},
                    train={"steps": 1, "batch_size": 2, "lr": 1e-3, "init": '"fast-x4"'})
    trainer = Trainer(tiny(**sections))
    _hr, lr = trainer.dataset[7]
    fast, _ = load_generator("fast-x4")
    with torch.no_grad():  # train.init from a FastSR: the unrolled clip starts as fast-x4 on every frame
        assert torch.allclose(ClipUnroll(trainer.generator.eval())(lr[None]), fast(lr), atol=1e-5)
    trainer.generator.train()
    start = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    path = trainer.run()
    assert trainer.step == 1
    after = trainer.generator.state_dict()
    assert not torch.equal(after["head.weight"], start["head.weight"])
    assert start["past.weight"].abs().max() == 0 and after["past.weight"].abs().max() > 0  # frames 1.. used a past
    # With the past at zero no gradient reaches the hidden channels yet; it must once the past is read (below).
    assert torch.equal(after["hidden.weight"], start["hidden.weight"])
    card = json.loads(path.with_suffix(".json").read_text())
    assert card["temporal"]["recurrent"] and card["training"]["batch"] == "2 clips x 2 frames"
    # Its checkpoint is a recurrent model too (a benchmark or the engine may run a run's checkpoint directly).
    assert load_generator(trainer.checkpoint_path)[1].state_channels == trainer.generator.state_channels
    assert "zero state" in card["training"]["unroll"]

    sections["train"]["steps"] = 2
    sections["log"] = {"sample_every": 2}  # the sample grid runs each clip's first frames through the state too
    resumed = Trainer(tiny(**sections))
    assert resumed.step == 1
    for name, value in resumed.generator.state_dict().items():
        assert torch.equal(value, after[name]), name
    resumed.run()
    assert resumed.step == 2 and (resumed.out_dir / "samples" / "step_0000002.png").is_file()
    # Frame t+1's loss reached frame t's hidden conv through the state: backpropagation through the clip.
    assert not torch.equal(resumed.generator.state_dict()["hidden.weight"], after["hidden.weight"])


def test_onnx_export_of_a_saved_recurrent_model_matches_torch(tmp_path):
    import onnxruntime as ort

    model, _ = recurrent_from_fast(seed=0)
    spec = load_model(save_weights(model, tmp_path / "rec-x4", {"name": "rec-x4"}))
    assert spec.recurrent and spec.input_channels == 3 + model.state_channels
    session = ort.InferenceSession(str(export_onnx(spec, tmp_path / "rec.onnx")), providers=["CPUExecutionProvider"])
    frames = real_frames(2, 40, 56)  # non-square
    s = model.state_channels
    with torch.no_grad():
        _, state = unpack_state(spec.module(pack_state(frames[:1], None, s)), 3, 4)  # frame 0's real state
        packed = pack_state(frames[1:], state, s)
        want = spec.module(packed).numpy()
    got = session.run(None, {INPUT: packed.numpy()})[0]
    assert got.shape == want.shape == (1, 3 + s // 16, 160, 224)
    assert np.abs(got - want).max() <= 1e-4
    no_past = session.run(None, {INPUT: pack_state(frames[1:], None, s).numpy()})[0]
    assert np.abs(no_past[:, :3] - got[:, :3]).max() > 1e-3  # the state input is live in the graph


def qp_recurrent_from_qp_fast(tmp_path) -> tuple[Path, RecurrentSR]:
    """A recurrent QP model saved from footage-qp-fast-x4 (its state path given seeded random weights, so that the
    state changes the output) and the module itself."""
    fast, descriptor = load_generator("footage-qp-fast-x4")
    model = RecurrentSR(RecurrentConfig(**{k: descriptor.config[k] for k in ("scale", "channels", "width", "layers")},
                                        qp_input=True))
    model.load_fast(fast.state_dict())
    return save_weights(model, tmp_path / "qp-rec-x4", {"name": "qp-rec-x4"}), model


def test_a_qp_recurrent_model_takes_each_frames_qp_through_the_engine_step(tmp_path):
    from srstream.engine import Upscaler
    from training import compression

    path, model = qp_recurrent_from_qp_fast(tmp_path)
    rec = Upscaler(str(path), backend="cpu", precision="fp32")
    single = Upscaler("footage-qp-fast-x4", backend="cpu", precision="fp32")
    assert rec.spec.recurrent and rec.spec.descriptor.takes_qp
    assert rec.spec.input_channels == 3 + 1 + model.state_channels
    frames = real_frames(2)
    facts = [compression.constant(38.0, 48, 64), compression.constant(20.0, 48, 64)]
    y, state = rec.step(frames, None, None, facts)
    # With its past at zero it is the single-frame model it came from, QP plane and all ...
    assert torch.allclose(y, single.upscale_tensor(frames, None, facts), atol=1e-5)
    assert state.shape == (2, model.state_channels, 48, 64)
    # ... and the QP is live: the same frames told another QP come out otherwise.
    other, _ = rec.step(frames, None, None, [compression.constant(5.0, 48, 64)] * 2)
    assert (other - y).abs().amax() > 1e-3


def test_the_video_front_door_gives_a_qp_recurrent_model_the_decoders_qp(tmp_path, caplog):
    import logging

    from srstream.cli import main

    path, _ = qp_recurrent_from_qp_fast(tmp_path)
    with caplog.at_level(logging.WARNING, logger="srstream.video"):
        assert main(["upscale", str(CLIP), str(tmp_path / "o.mp4"), "-m", str(path), "-t", "0.2", "-q"]) == 0
    said = [r.getMessage() for r in caplog.records if "the QP for qp-rec-x4" in r.getMessage()]
    assert len(said) == 1 and "comes from the decoder (mean QP" in said[0]
    with av.open(str(tmp_path / "o.mp4")) as out:
        assert out.streams.video[0].codec_context.width == 4 * 320 and out.streams.video[0].frames >= 4
