"""The trainer on real crops: loss goes down, resume is exact, DDP agrees with one process, both phases run."""
import json
import os
import subprocess
import sys

import pytest
import torch

from training.config import ConfigError, load_config
from training.data import HRCrops, StepSampler
from training.degrade import degrade
from training.descriptor import ModelDescriptor, Restores
from training.losses import VGGFeatureLoss, VGGWeightsMissing, _vgg_layer_index, content_loss
from training.train import Trainer, learning_rate, main
from training.weights import load_generator

from assets import DATA, ROOT
from conftest import tiny_config


def test_crops_are_deterministic_and_augmented():
    data = HRCrops([DATA / "train"], patch_size=48, seed=3)
    assert torch.equal(data[7], HRCrops([DATA / "train"], patch_size=48, seed=3)[7])
    assert not torch.equal(data[7], data[8])
    assert data[7].shape == (3, 48, 48) and data[7].min() >= 0 and data[7].max() <= 1
    batches = iter(StepSampler(4, start_step=2, rank=1, world_size=2))
    assert next(batches) == [20, 21, 22, 23]


def test_a_few_steps_on_real_crops_reduce_the_loss(tmp_path):
    config = tiny_config(tmp_path, train={"steps": 40, "lr": 1e-3}, model={"architecture": '"fast"'})
    trainer = Trainer(config)
    fixed = torch.stack([trainer.dataset[10**9 + k] for k in range(8)])
    lr = degrade(fixed, 4)

    def loss() -> float:
        with torch.no_grad():
            return torch.nn.functional.l1_loss(trainer.generator.eval()(lr), fixed).item()

    before = loss()
    trainer.generator.train()
    trainer.run()
    assert loss() < 0.8 * before


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    straight = Trainer(tiny_config(tmp_path / "a"))
    straight.run()
    first = Trainer(tiny_config(tmp_path / "b", train={"steps": 2}))
    first.run()
    resumed = Trainer(tiny_config(tmp_path / "b"))
    assert resumed.step == 2
    resumed.run()
    for (name, a), b in zip(straight.generator.state_dict().items(), resumed.generator.state_dict().values()):
        assert torch.equal(a, b), name
    assert straight.opt_g.state_dict()["state"][0]["exp_avg"].equal(resumed.opt_g.state_dict()["state"][0]["exp_avg"])


def test_srgan_phase_starts_from_phase_one_and_trains_both_networks(tmp_path):
    phase1 = Trainer(tiny_config(tmp_path / "p1", train={"steps": 2})).run()
    config = tiny_config(tmp_path / "p2", top={"phase": '"srgan"'},
                         train={"steps": 3, "init": f'"{phase1}"', "lr_schedule": '"drop_half"'},
                         adversarial={"d_warmup_steps": 1}, content={"loss": '"mse"'})
    trainer = Trainer(config)
    start, _ = load_generator(phase1)
    assert all(torch.allclose(a, b, atol=1e-3) for a, b in
               zip(start.state_dict().values(), trainer.generator.state_dict().values()))
    d_before = [p.detach().clone() for p in trainer.discriminator.parameters()]
    out = trainer.run()
    assert not all(torch.equal(a, b) for a, b in zip(d_before, trainer.discriminator.parameters()))
    _model, card = load_generator(out)
    assert card.training["phase"] == "srgan" and card.training["adversarial_weight"] == 1e-3


def test_learning_rate_schedules():
    assert learning_rate(1e-4, "drop_half", 499, 1000) == 1e-4
    assert learning_rate(1e-4, "drop_half", 500, 1000) == pytest.approx(1e-5)
    assert learning_rate(1e-4, "cosine", 1000, 1000) == pytest.approx(0, abs=1e-12)


def test_vgg_layers_follow_the_paper_naming():
    # torchvision's vgg19().features: relu2_2 is index 8, relu5_4 is index 35.
    assert _vgg_layer_index(2, 2) == 8 and _vgg_layer_index(5, 4) == 35
    with pytest.raises(ValueError, match="phi_2,3"):
        _vgg_layer_index(2, 3)


def test_vgg_loss_without_weights_names_the_options(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(VGGWeightsMissing, match=r"content\.vgg_weights=PATH.*content\.loss='mse'"):
        content_loss("vgg")
    config = tiny_config(tmp_path, content={"loss": '"vgg"'})
    assert main(["--set", f'out_dir="{tmp_path}"', "--set", f'data.train=["{DATA / "train"}"]',
                 "--set", 'content.loss="vgg"']) == 2
    assert config["content"]["loss"] == "vgg"


def test_vgg_loss_from_an_explicit_weights_file(tmp_path):
    from torchvision.models import vgg19

    weights = tmp_path / "vgg19.pth"
    torch.save(vgg19().state_dict(), weights)  # random weights: this checks the loading path and the layer cut
    loss = VGGFeatureLoss(2, 2, weights_file=weights)
    assert len(loss.features) == 9
    a, b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert loss(a, a).item() == 0 and loss(a, b).item() > 0


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown setting 'stpes'"):
        load_config(None, ["train.stpes=3", "data.train=['x']"])
    with pytest.raises(ConfigError, match=r"data\.train is empty"):
        load_config(None, [])
    with pytest.raises(ConfigError, match=r"data\.qp_average is for a model that takes the QP"):
        load_config(None, ["data.train=['x']", "data.qp_average=true"])
    with pytest.raises(ConfigError, match=r"model\.qp_modulation reads the QP plane"):
        load_config(None, ["data.train=['x']", "model.architecture='fast'", "model.qp_modulation=16"])
    bad = tmp_path / "bad.toml"
    bad.write_text("phase = [")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML: end of file: "):
        load_config(bad)
    with pytest.raises(ConfigError, match=r"none\.toml: no such file$"):
        load_config(tmp_path / "none.toml")


def test_a_users_toml_file_is_read_with_the_line_of_its_error(tmp_path):
    """training/toml_file.py reads the training configs, the site files and the node's rules alike."""
    from training.toml_file import read_toml

    path = tmp_path / "site.toml"
    path.write_text('[cameras.lobby]\ninput = "rtsp://cam/1"\ncrf = = 23\n')
    with pytest.raises(ValueError) as caught:
        read_toml(path, ValueError)
    assert str(caught.value) == f"{path}: not valid TOML: line 3: Invalid value"
    path.write_text('[cameras.lobby]\ninput = "rtsp://cam/1"\n')
    assert read_toml(path, ValueError) == {"cameras": {"lobby": {"input": "rtsp://cam/1"}}}


def test_ddp_with_two_cpu_processes_matches_one_process(tmp_path):
    common = ["--set", f'data.train=["{DATA / "train"}"]', "--set", "data.patch_size=32", "--set", "data.workers=0",
              "--set", "train.steps=1", "--set", "model.blocks=2", "--set", "model.width=16",
              "--set", "model.batch_norm=false", "--set", "log.sample_every=0"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29533", "-m", "training.train", *common,
                          "--set", f'out_dir="{tmp_path / "ddp"}"', "--set", "train.batch_size=2"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    single = subprocess.run([sys.executable, "-m", "training.train", *common,
                             "--set", f'out_dir="{tmp_path / "one"}"', "--set", "train.batch_size=4"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-2000:]
    a, card_a = load_generator(tmp_path / "ddp" / "srresnet-x4.safetensors")
    b, _ = load_generator(tmp_path / "one" / "srresnet-x4.safetensors")
    assert card_a.training["processes"] == 2 and card_a.training["batch_size"] == 4
    start = Trainer(tiny_config(tmp_path / "init")).generator.state_dict()
    moved = 0
    for key, pa in a.state_dict().items():
        pb = b.state_dict()[key]
        assert torch.allclose(pa, pb, atol=2e-3), key  # fp16 weights on disk: equal to storage precision
        moved += int(not torch.allclose(pa, start[key].float(), atol=1e-6))
    assert moved > 0


def test_slab_config_and_a_wall_clock_budget(tmp_path):
    with pytest.raises(ConfigError, match=r"slab degradation needs model\.scale = 1"):
        load_config(None, ['data.train=["x"]', 'data.degradation="slab"', "data.thickness=4"])
    config = tiny_config(tmp_path, model={"scale": 1, "channels": 1}, data={"degradation": '"slab"', "thickness": 4},
                         train={"steps": 10_000, "minutes": 0.01})
    trainer = Trainer(config)
    path = trainer.run()
    assert 0 < trainer.step < 10_000 and trainer.seconds >= 0.6  # stopped by the budget, not the step count
    card = ModelDescriptor.from_card(json.loads(path.with_suffix(".json").read_text()))
    assert card.training["degradation"] == "slab" and card.slab_thickness == 4 and card.scale == 1
    assert card.restores is Restores.THICK_SLICES and card.through_plane and not card.transposable


def test_ema_weights_are_shipped_and_resume_exactly(tmp_path):
    decay = 0.9
    trainer = Trainer(tiny_config(tmp_path / "a", train={"steps": 1, "ema": decay}))
    trainer.run()
    after_one = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    assert all(torch.equal(a, b) for a, b in zip(after_one.values(), trainer.ema.module.state_dict().values()))
    trainer.config["train"]["steps"] = 2
    out = trainer.run()
    # The second update is decay * previous average + (1 - decay) * new weights.
    for key, new in trainer.generator.state_dict().items():
        expected = decay * after_one[key] + (1 - decay) * new
        assert torch.allclose(trainer.ema.module.state_dict()[key], expected, atol=1e-6), key
    ema_head = trainer.ema.module.state_dict()["head.0.weight"]
    assert not torch.equal(ema_head, trainer.generator.state_dict()["head.0.weight"])
    shipped, card = load_generator(out)
    from_checkpoint, _ = load_generator(tmp_path / "a" / "run" / "checkpoint.pt")
    for (key, a), b, c in zip(shipped.state_dict().items(), from_checkpoint.state_dict().values(),
                              trainer.ema.module.state_dict().values()):
        assert torch.allclose(a, c, atol=1e-3) and torch.equal(b, c), key  # safetensors are fp16
    assert card.training["ema"] == decay

    straight = Trainer(tiny_config(tmp_path / "b", train={"steps": 4, "ema": decay}))
    straight.run()
    Trainer(tiny_config(tmp_path / "c", train={"steps": 2, "ema": decay})).run()
    resumed = Trainer(tiny_config(tmp_path / "c", train={"steps": 4, "ema": decay}))
    resumed.run()
    for (key, a), b in zip(straight.ema.module.state_dict().items(), resumed.ema.module.state_dict().values()):
        assert torch.equal(a, b), key
    with pytest.raises(ConfigError, match=r"train\.ema"):
        tiny_config(tmp_path, train={"ema": 1.5})
