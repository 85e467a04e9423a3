"""Community upscalers through spandrel: real architectures with random weights, saved as the community does."""
import pickle

import numpy as np
import pytest
import torch

from srstream.engine import Upscaler
from srstream.images import read_image
from srstream.models import load_model
from training.weights import ModelLoadError

from assets import EXAMPLES

spandrel = pytest.importorskip("spandrel")


def _esrgan_pth(path, scale=4):
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    net = ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=scale)
    torch.save(net.state_dict(), path)  # a plain state dict in a .pth, as ESRGAN releases ship
    return net.eval()


def _compact_safetensors(path):
    from safetensors.torch import save_file
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(1)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=16, num_conv=2, upscale=2)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)
    return net.eval()


def test_esrgan_pth_upscales_a_real_image_to_the_right_size(tmp_path):
    net = _esrgan_pth(tmp_path / "RealESRGAN_tiny_x4.pth")
    spec = load_model(tmp_path / "RealESRGAN_tiny_x4.pth")
    assert spec.scale == 4 and spec.channels == 3 and spec.descriptor.source == "spandrel"
    image = read_image(EXAMPLES / "foreman.png")[:30, :44]
    out = Upscaler(spec, backend="cpu").upscale(image)
    assert out.shape == (120, 176, 3)
    with torch.no_grad():
        want = net(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255).clamp(0, 1)
    assert np.abs(out.astype(int) - (want[0].permute(1, 2, 0).numpy() * 255).round().astype(int)).max() <= 1
    ort = Upscaler(spec, backend="onnxruntime").upscale(image)
    assert np.abs(ort.astype(int) - out.astype(int)).max() <= 1


def test_compact_safetensors_without_a_card_goes_through_spandrel(tmp_path):
    _compact_safetensors(tmp_path / "compact_x2.safetensors")
    out = Upscaler(str(tmp_path / "compact_x2.safetensors"), backend="cpu").upscale(
        read_image(EXAMPLES / "foreman.png")[:20, :20])
    assert out.shape == (40, 40, 3)


class Payload:
    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pth_is_refused_and_runs_nothing(tmp_path):
    Payload.marker = tmp_path / "pwned"
    evil = tmp_path / "4x_evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"params": Payload()}, f)
    with pytest.raises(ModelLoadError, match=r"4x_evil\.pth: refused to load"):
        load_model(evil)
    assert not Payload.marker.exists()


def test_a_pth_that_is_no_upscaler_is_refused(tmp_path):
    path = tmp_path / "classifier.pth"
    torch.save(torch.nn.Linear(4, 2).state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"classifier\.pth: not a model architecture spandrel knows"):
        load_model(path)
