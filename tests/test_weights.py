"""Weights on disk: safetensors + card round trip, trainer checkpoints, and refusal of unsafe or foreign files."""
import pickle

import pytest
import torch

from training.architectures.srresnet import SRResNet, SRResNetConfig
from training.train import Trainer
from training.weights import ModelLoadError, load_generator, save_weights, shipped_models

from conftest import tiny_config


class Payload:
    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_safetensors_round_trip_is_fp16_exact(tmp_path):
    model = SRResNet(SRResNetConfig(blocks=2, width=16)).eval()
    path = save_weights(model, tmp_path / "m.safetensors", {"name": "m"})
    assert path.stat().st_size < 200_000 and path.with_suffix(".json").is_file()
    loaded, card = load_generator(path)
    assert card.architecture == "srresnet" and card.config["blocks"] == 2 and card.scale == 4
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=5e-3)


def test_a_trainer_checkpoint_loads_in_one_call(tmp_path):
    trainer = Trainer(tiny_config(tmp_path))
    trainer.run()
    model, card = load_generator(tmp_path / "run" / "checkpoint.pt")
    assert card.architecture == "srresnet" and card.training["steps"] == 4
    for a, b in zip(model.state_dict().values(), trainer.generator.state_dict().values()):
        assert torch.equal(a, b.float())


def test_a_pickle_with_code_in_it_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    Payload.marker = marker
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"generator": Payload(), "card": {}}, f)
    with pytest.raises(ModelLoadError, match=r"evil\.pt: refused to load"):
        load_generator(evil)
    assert not marker.exists()


def test_files_that_are_no_model_are_refused_clearly(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    junk.with_suffix(".json").write_text('{"architecture": "srresnet", "config": {}}')
    with pytest.raises(ModelLoadError, match=r"junk\.safetensors: not a readable safetensors file"):
        load_generator(junk)
    nocard = tmp_path / "nocard.safetensors"
    save_weights(SRResNet(SRResNetConfig(blocks=1, width=8)), nocard, {})
    nocard.with_suffix(".json").unlink()
    with pytest.raises(ModelLoadError, match=r"model card nocard\.json is missing"):
        load_generator(nocard)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(ModelLoadError, match=r"notes\.pt"):
        load_generator(text)
    with pytest.raises(ModelLoadError, match="no such model file or shipped model"):
        load_generator("srresnet-x5")


def test_shipped_models_have_cards_with_figures():
    cards = shipped_models()
    assert {"srresnet-x4", "fast-x4", "srgan-x4"} <= set(cards)
    assert {"mri-x2", "mri-x4", "mri-thick-x4"} <= set(cards)
    for name, card in cards.items():
        assert card.name == name and card.training["steps"] > 0
        if card.channels == 3:
            assert card.evaluation("Set5") and card.evaluation("Set14")
        else:  # grey models: measured on the evaluation head volume (MRI, or CT for CT models) against cubic
            assert card.evaluation("ct_head" if name.startswith("ct-") else "t1_head").gain_db > 0
