"""The shipped weights beat bicubic on real images they were never trained on (Set5 is evaluation-only)."""
import pytest

from conftest import DATA
from training import evaluate as ev
from training.weights import load_generator


@pytest.mark.parametrize("name,margin", [("srresnet-x4", 1.0), ("fast-x4", 0.8), ("srgan-x4", 0.3)])
def test_shipped_model_beats_bicubic_on_unseen_images(name, margin):
    model, card = load_generator(name)
    result = ev.evaluate(model, ev.image_files(DATA / "set5"), scale=card["scale"])
    for row in result["images"]:
        assert row["psnr_y"] > row["bicubic_psnr_y"] + margin, row
        assert row["ssim_y"] > row["bicubic_ssim_y"], row
