"""The shipped weights beat bicubic on real images they were never trained on (Set5 is evaluation-only)."""
import numpy as np
import pytest

from training import evaluate as ev
from training.data import load_image
from training.degrade import degrade
from training.weights import load_generator

from assets import DATA


@pytest.mark.parametrize("name,margin", [("srresnet-x4", 0.5), ("fast-x4", 0.8)])
def test_shipped_model_beats_bicubic_on_unseen_images(name, margin):
    model, card = load_generator(name)
    result = ev.evaluate(model, ev.image_files(DATA / "set5"), scale=card.scale)
    for row in result["images"]:
        assert row["psnr_y"] > row["bicubic_psnr_y"] + margin, row
        assert row["ssim_y"] > row["bicubic_ssim_y"], row


def test_srgan_is_a_real_second_phase_of_srresnet():
    """srgan-x4 starts from srresnet-x4 and was trained on: same architecture, different weights, its card says so.
    PSNR is not its aim (on Set5 it sits near bicubic, see the README); what the adversarial phase adds is
    high-frequency texture that the PSNR-oriented model smooths away."""
    import torch

    gan, gan_card = load_generator("srgan-x4")
    base, base_card = load_generator("srresnet-x4")
    assert gan_card.config == base_card.config and gan_card.training["phase"] == "srgan"
    assert gan_card.training["adversarial_weight"] == 1e-3
    assert any(not torch.allclose(a, b) for a, b in zip(gan.state_dict().values(), base.state_dict().values()))
    result = ev.evaluate(gan, ev.image_files(DATA / "set5"), scale=4)
    assert result["psnr_y"] > result["bicubic_psnr_y"] - 1.0  # near bicubic in PSNR, not broken
    hr = torch.from_numpy(load_image(DATA / "set5" / "bird.png")).permute(2, 0, 1)[None].float() / 255
    lr = degrade(hr, 4)

    def detail(x: torch.Tensor) -> float:  # mean absolute difference between neighbouring pixels
        return float((x.diff(dim=-1).abs().mean() + x.diff(dim=-2).abs().mean()) / 2)

    with torch.no_grad():
        gan_detail, base_detail = detail(gan(lr).clamp(0, 1)), detail(base(lr).clamp(0, 1))
    assert gan_detail > 1.2 * base_detail  # measured 0.0606 vs 0.0370 (HR 0.0443): sharper, and noisier


@pytest.fixture(scope="module")
def compressed_footage():
    """12 real 720p frames (vtest, an evaluation clip), shrunk x4 by area and through libx264 at CRF 28 as one GOP:
    the HR and the decoded LR, as benchmarks/compressed_video.py makes them."""
    import av

    from training.codec import Encoding, compress

    with av.open(str(DATA / "video" / "vtest_720p_1s.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(12), container.decode(video=0))]
    hr = np.stack(frames)[:, 180:540, 320:960]  # 640x360 of the scene's middle
    lr = np.round(hr.reshape(12, 90, 4, 160, 4, 3).astype(np.float64).mean(axis=(2, 4))).astype(np.uint8)
    return hr, compress(lr, Encoding(crf=28, preset="medium", bframes=3))


@pytest.mark.parametrize("name", ["camera-fast-x4", "camera-srresnet-x4", "footage-srresnet-x4"])
def test_camera_models_beat_bicubic_on_compressed_real_footage(name, compressed_footage):
    from srstream.engine import Upscaler
    from training.metrics import psnr_y

    hr, lr = compressed_footage
    sr = Upscaler(name, backend="cpu", precision="fp32").upscale(lr)
    bicubic = np.stack([ev.bicubic_upscale(f, 4) for f in lr])
    gain = np.mean([psnr_y(s, h, 4) - psnr_y(b, h, 4) for s, b, h in zip(sr, bicubic, hr)])

    def flicker(out: np.ndarray) -> float:  # how much the error changes from frame to frame
        return float(np.abs(np.diff(out.astype(np.float32) - hr, axis=0)).mean())

    assert gain > 0.5, gain
    assert flicker(sr) < flicker(bicubic)


@pytest.mark.parametrize("name", ["footage-fast-x2"])
def test_x2_footage_models_beat_bicubic_on_compressed_real_footage(name):
    """The x2 models on real 720p frames (vtest, an evaluation clip) shrunk x2 by area and through libx264 at CRF 28
    as one GOP, as `benchmarks/compressed_video.py --scale 2` makes them: a clear gain over bicubic, and an error
    that changes less from frame to frame than bicubic's."""
    import av

    from srstream.engine import Upscaler
    from training.codec import Encoding, compress
    from training.metrics import psnr_y

    with av.open(str(DATA / "video" / "vtest_720p_1s.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(8), container.decode(video=0))]
    hr = np.stack(frames)[:, 270:450, 480:800]  # 320x180 of the scene's middle
    lr = np.round(hr.reshape(8, 90, 2, 160, 2, 3).astype(np.float64).mean(axis=(2, 4))).astype(np.uint8)
    lr = compress(lr, Encoding(crf=28, preset="medium", bframes=3))
    sr = Upscaler(name, backend="cpu", precision="fp32").upscale(lr)
    bicubic = np.stack([ev.bicubic_upscale(f, 2) for f in lr])
    gain = np.mean([psnr_y(s, h, 2) - psnr_y(b, h, 2) for s, b, h in zip(sr, bicubic, hr)])

    def flicker(out: np.ndarray) -> float:
        return float(np.abs(np.diff(out.astype(np.float32) - hr, axis=0)).mean())

    assert gain > 0.5, gain
    assert flicker(sr) < flicker(bicubic)
