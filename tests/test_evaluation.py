"""The benchmark protocol on real images: MATLAB bicubic, Y-PSNR/SSIM, the evaluation CLI."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from training import evaluate as ev
from training.degrade import degrade, imresize
from training.metrics import psnr_y, rgb_to_y, ssim_y

from assets import DATA

# Per-image bicubic x4 Y-PSNR published with SRCNN (Dong et al., TPAMI 2016, Table), computed in MATLAB.
PUBLISHED_BICUBIC_X4 = {"bird.png": 30.18, "head.png": 31.59}


def test_bicubic_psnr_matches_published_matlab_figures():
    result = ev.evaluate(torch.nn.Upsample(scale_factor=4), ev.image_files(DATA / "set5"), scale=4)
    for row in result["images"]:
        assert row["bicubic_psnr_y"] == pytest.approx(PUBLISHED_BICUBIC_X4[row["image"]], abs=0.05)


def test_psnr_against_an_independent_numpy_computation():
    hr = np.asarray(Image.open(DATA / "set5" / "bird.png").convert("RGB"))
    hr, lr = ev.benchmark_lr(hr, 4)
    up = ev.bicubic_upscale(lr, 4)
    # Independent: luma by matrix product on the whole image, then shave, then PSNR.
    weights = np.array([65.481, 128.553, 24.966]) / 255.0
    y1 = (hr.astype(np.float64) @ weights + 16)[4:-4, 4:-4]
    y2 = (up.astype(np.float64) @ weights + 16)[4:-4, 4:-4]
    expected = 20 * np.log10(255.0 / np.sqrt(np.mean((y1 - y2) ** 2)))
    assert psnr_y(up, hr, 4) == pytest.approx(expected, abs=1e-9)
    assert 0.8 < ssim_y(up, hr, 4) < 1.0
    assert ssim_y(hr, hr, 4) == pytest.approx(1.0)


def test_grey_images_are_measured_on_their_grey_values():
    grey = np.asarray(Image.open(DATA / "bridge.png"))
    assert grey.ndim == 2
    assert np.array_equal(rgb_to_y(grey), grey.astype(np.float64))
    result = ev.evaluate(torch.nn.Upsample(scale_factor=4), [DATA / "bridge.png"], scale=4)
    hr, lr = ev.benchmark_lr(np.repeat(grey[..., None], 3, axis=2), 4)
    up = ev.bicubic_upscale(lr, 4)[..., 0]
    assert result["bicubic_psnr_y"] == pytest.approx(psnr_y(up, hr[..., 0], 4))


def test_imresize_keeps_constants_and_shapes():
    x = torch.full((1, 3, 50, 37), 0.3, dtype=torch.float64)
    y = imresize(x, 0.25)
    assert y.shape == (1, 3, 13, 10) and torch.allclose(y, torch.full_like(y, 0.3))
    assert imresize(y, 4, antialias=False).shape == (1, 3, 52, 40)


@pytest.mark.parametrize("kind,sigma", [("bicubic", 0.0), ("gaussian", 1.5), ("gaussian", 0.0)])
def test_degradations_make_lr_of_the_right_size(kind, sigma):
    hr = torch.rand(2, 3, 96, 96)
    lr = degrade(hr, 4, kind, sigma)
    assert lr.shape == (2, 3, 24, 24) and lr.min() >= 0 and lr.max() <= 1


def test_gaussian_blur_smooths():
    hr = torch.rand(1, 1, 64, 64)
    assert degrade(hr, 4, "gaussian", 2.0).std() < degrade(hr, 4, "gaussian", 0.0).std() / 2


def test_evaluate_cli_json(capsys, tmp_path):
    from training.train import Trainer

    from conftest import tiny_config

    path = Trainer(tiny_config(tmp_path, top={"name": '"tiny"'})).run()
    assert ev.main(["--model", str(path), "--data", str(DATA / "set5"), "--scale", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"} <= set(out)
    assert [r["image"] for r in out["images"]] == ["bird.png", "head.png"]
    assert out["bicubic_psnr_y"] == pytest.approx(np.mean(list(PUBLISHED_BICUBIC_X4.values())), abs=0.05)


def test_evaluate_cli_errors_are_one_line(capsys, tmp_path):
    assert ev.main(["--model", "no-such-model", "--data", str(DATA / "set5")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no-such-model") and "\n" not in err
    assert ev.main(["--model", "no-such-model", "--data", str(tmp_path / "nothing")]) == 2


def test_box_and_slab_degradations_average_what_a_thick_detector_sees():
    hr = torch.rand(2, 1, 96, 64)
    box = degrade(hr, 4, "box")
    assert box.shape == (2, 1, 24, 16) and torch.allclose(box[0, 0, 0, 0], hr[0, 0, :4, :4].mean())
    photo = torch.from_numpy(np.asarray(Image.open(DATA / "set5" / "bird.png").convert("L"), np.float32) / 255)
    hr = photo[None, None, :96, :96]
    slab = degrade(hr, 4, "slab")
    assert slab.shape == hr.shape  # same grid: cubic brings the thick rows back onto the fine one
    thick = hr.reshape(1, 1, 24, 4, 96).mean(3)
    assert (slab.reshape(1, 1, 24, 4, 96).mean(3) - thick).abs().mean() < 0.01  # the slabs' means are kept
    assert slab.diff(dim=2).abs().mean() < 0.85 * hr.diff(dim=2).abs().mean()  # blurred along the height (0.78)
    assert torch.allclose(slab.diff(dim=3).abs().mean(), thick.diff(dim=3).abs().mean(), rtol=0.1)  # not across
    with pytest.raises(ValueError, match="multiple of the slab thickness 4"):
        degrade(torch.rand(1, 1, 30, 30), 4, "slab")
