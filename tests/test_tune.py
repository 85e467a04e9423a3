"""`srstream tune` (per-camera adaptation) on real footage, and the video and image defaults."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srstream import backends
from srstream.backends import BackendType
from srstream.cli import main
from srstream.default_rule import pick
from srstream.defaults import image_model, video_model, video_table
from srstream.models import load_model
from srstream.tune_command import read_footage
from training.camera_degrade import CameraSettings
from training.footage_tune import TuneSettings, _pairs, fine_tune, fitted_patch

from assets import CLIP, DATA, EXAMPLES


def _l1_on(module, hr, lr) -> float:
    with torch.no_grad():
        return F.l1_loss(module(lr), hr).item()


def test_tuning_on_a_cameras_footage_fits_that_footage_better():
    footage = read_footage(str(CLIP), frames=30, duration=None)
    assert footage.shape == (30, 180, 320, 3)
    camera = CameraSettings(frames=3, codec_p=1.0, crf=(28, 32), blur_p=0.0, noise_p=0.0, second_order_p=0.0,
                            jpeg_p=0.0, resizes=("area",))
    held_out = _pairs(footage, np.random.default_rng(123), camera, 4, batch=4, patch=96)  # never trained on
    base = load_model("fast-x4").module.float().eval()
    tuned, log = fine_tune(base, footage, camera, 4, TuneSettings(seconds=120, max_steps=40, batch=2, patch=96,
                                                                  lr=2e-4), progress=False)
    assert log["steps"] == 40 and log["footage_frames"] == 30 and log["patch"] == 96
    assert _l1_on(tuned, *held_out) < _l1_on(base, *held_out)
    assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(),
                                                   load_model("fast-x4").module.float().state_dict().values()))


def test_srstream_tune_writes_a_model_that_m_takes(tmp_path, capsys):
    out = tmp_path / "cam1.safetensors"
    assert main(["tune", str(CLIP), "-o", str(out), "-m", "fast-x4", "--seconds", "3", "--frames", "20", "-q"]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["name"] == "cam1" and card["tuned"]["base"] == "fast-x4" and card["tuned"]["steps"] >= 1
    assert card["tuned"]["footage"] == str(CLIP) and card["evaluation"] == {}  # the base's figures do not carry over
    assert load_model(out).descriptor.name == "cam1"
    video = tmp_path / "out.mp4"
    assert main(["upscale", str(CLIP), str(video), "-m", str(out), "-t", "0.4", "-q"]) == 0
    assert video.stat().st_size > 0
    assert main(["tune", str(CLIP), "-o", str(out), "--seconds", "1", "-q"]) == 1  # exists: one line, untouched
    assert "already exists" in capsys.readouterr().err


def test_the_patch_fits_small_footage_and_tiny_footage_is_refused():
    frames = read_footage(str(CLIP), frames=6, duration=None)
    small = frames[:, :120, :180]  # as Vid4's foliage shrunk x4
    assert fitted_patch(small, "cam", 5, 128, 4) == 120
    with pytest.raises(ValueError, match="cam: frames of 40x40 are too small to tune on"):
        fitted_patch(frames[:, :40, :40], "cam", 5, 128, 4)
    with pytest.raises(ValueError, match="cam: 3 frames; tuning needs at least 5"):
        fitted_patch(frames[:3], "cam", 5, 128, 4)


@pytest.mark.parametrize("args,message", [
    (["tune", str(DATA / "nothing.mp4")], "nothing.mp4"),
    (["tune", str(EXAMPLES / "foreman.png")], "not a video file or stream"),
    (["tune", str(CLIP), "--frames", "2"], "tuning needs at least 5"),
    (["tune", str(CLIP), "-m", "mri-x2"], "single-frame RGB upscalers"),
])
def test_tune_errors_are_one_line_and_write_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "m.safetensors"
    assert main([*args, "-o", str(out), "--seconds", "1", "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_video_and_images_get_their_own_default_model(tmp_path, capsys):
    assert main(["upscale", str(CLIP), str(tmp_path / "v.mp4"), "-t", "0.2"]) == 0
    err = capsys.readouterr().err
    model = video_model("cpu")
    assert f"srstream: {model} x4 on cpu" in err
    assert "(the video default on a CPU: within 0.05 dB of the best" in err or "(the video default on a CPU: no" in err
    assert main(["upscale", str(DATA / "set5" / "bird.png"), str(tmp_path / "b.png")]) == 0
    assert f"srstream: {image_model()} x4 on" in capsys.readouterr().err


class Accelerator(BackendType):
    """A backend that says it runs on a GPU (bicubic on the CPU underneath): what the video default asks."""

    name = "gpu-test"
    auto_rank = -1
    fixed_precision = "fp32"
    accelerator = True

    def create(self, spec, precision: str, **options):
        class Bicubic:
            name, device, precision, dtype = "gpu-test", torch.device("cpu"), "fp32", torch.float32
            capabilities: frozenset[str] = frozenset()

            def __call__(self, x: torch.Tensor) -> torch.Tensor:
                return F.interpolate(x.float(), scale_factor=spec.scale, mode="bicubic", align_corners=False)
        return Bicubic()


def test_on_a_gpu_the_video_default_is_the_rules_pick_among_every_model(tmp_path, capsys):
    backends.register(Accelerator())
    try:
        gpu, cpu = pick(video_table(accelerator=True)), pick(video_table(accelerator=False))
        assert set(video_table()) <= set(video_table(accelerator=True))
        assert video_model() == gpu and video_model("cpu") == cpu
        assert main(["upscale", str(CLIP), str(tmp_path / "v.mp4"), "-t", "0.2"]) == 0
        err = capsys.readouterr().err
        assert f"srstream: {gpu} x4 on gpu-test" in err and "(the video default on a GPU" in err
        assert main(["upscale", str(CLIP), str(tmp_path / "c.mp4"), "-t", "0.2", "--backend", "cpu"]) == 0
        assert f"srstream: {cpu} x4 on cpu" in capsys.readouterr().err
    finally:
        backends.unregister("gpu-test")
