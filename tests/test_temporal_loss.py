"""The temporal loss (training/losses.py): the benchmark's flicker of the error, on a real clip, as a training
term for clips."""
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from training.camera_clips import camera_clip
from training.config import ConfigError
from training.data import load_image
from training.losses import temporal_loss
from training.train import Trainer

from assets import PHOTO


@pytest.fixture(scope="module")
def clip() -> torch.Tensor:
    """Six frames of a real photo under a camera pan, (T, 3, H, W) in [0, 1]."""
    frames = camera_clip(load_image(PHOTO), np.random.default_rng(3), 6, 128, "pan", speed=5.0)
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255


def bicubic_round_trip(hr: torch.Tensor) -> torch.Tensor:
    small = F.interpolate(hr, scale_factor=0.25, mode="area")
    return F.interpolate(small, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)


def test_it_is_the_benchmarks_flicker_of_the_error_per_clip(clip):
    sr = bicubic_round_trip(clip)
    # benchmarks/compressed_video.py's flicker: mean |frame-to-frame change of (output - HR)| in 8-bit levels
    error = (sr - clip).numpy() * 255
    flicker = np.abs(np.diff(error, axis=0)).mean()
    assert flicker > 1  # a moving clip's bicubic error does change from frame to frame
    assert temporal_loss(sr, clip, frames=6).item() * 255 == pytest.approx(flicker, rel=1e-5)
    # two clips of three frames: the change between the clips (frame 3 to 4) is not counted
    two = torch.cat([sr[:3], sr[3:]]), torch.cat([clip[:3], clip[3:]])
    within = np.concatenate([np.diff(error[:3], axis=0), np.diff(error[3:], axis=0)])
    assert temporal_loss(*two, frames=3).item() * 255 == pytest.approx(np.abs(within).mean(), rel=1e-5)


def test_an_error_that_stays_put_costs_nothing(clip):
    steady = (torch.rand(1, 3, *clip.shape[2:]) - 0.5) * 0.1
    assert temporal_loss(clip + steady, clip, frames=6).item() == pytest.approx(0, abs=1e-7)
    assert temporal_loss(clip + steady * torch.rand(6, 1, 1, 1), clip, frames=6).item() > 1e-3


def test_it_needs_clips_and_a_weight_of_zero_or_more(tiny):
    with pytest.raises(ConfigError, match=r"content\.temporal"):
        tiny(content={"temporal": "1.0"})  # bicubic image crops have no frames
    with pytest.raises(ConfigError, match=r"content\.temporal"):
        tiny(data={"degradation": '"camera"', "patch_size": 64}, model={"architecture": '"fast"'},
             content={"temporal": "-1.0"})


def test_a_run_with_it_logs_it_and_names_it_on_the_card(tiny):
    config = tiny(data={"degradation": '"camera"', "patch_size": 64, "camera.frames": 3},
                  model={"architecture": '"fast"', "width": 16, "layers": 1},
                  train={"steps": 2, "batch_size": 2, "lr": 1e-3}, content={"loss": '"l1"', "temporal": "0.5"})
    trainer = Trainer(config)
    clips = trainer.dataset[0]
    hr, lr = (torch.stack([x, x]) for x in clips)  # two clips of three real frames
    logs = trainer.train_step(*trainer._batch([hr, lr]))
    assert logs["temporal"] > 0 and logs["content"] > 0
    card = json.loads(trainer.run().with_suffix(".json").read_text())
    assert card["training"]["temporal_weight"] == 0.5


def test_the_second_phase_keeps_it_in_its_content_term(tiny):
    config = tiny(top={"phase": '"srgan"'}, data={"degradation": '"camera"', "patch_size": 64, "camera.frames": 3},
                  model={"architecture": '"fast"', "width": 16, "layers": 1},
                  train={"steps": 1, "batch_size": 2, "lr": 1e-3}, content={"loss": '"l1"', "temporal": "0.5"},
                  adversarial={"d_warmup_steps": 0})
    trainer = Trainer(config)
    hr, lr = (torch.stack([x, x]) for x in trainer.dataset[0])
    logs = trainer.train_step(*trainer._batch([hr, lr]))
    assert logs["temporal"] > 0 and logs["content"] > 0 and "adv" in logs and "d" in logs
