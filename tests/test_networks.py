"""The networks against Ledig et al. 2017 (Fig. 4) and the fast generator's cost bound."""
import itertools

import pytest
import torch
from torch import nn

from training.architectures.fast import FastConfig, FastSR
from training.architectures.fast import macs_per_lr_pixel as fast_macs
from training.architectures.srresnet import SRResNet, SRResNetConfig
from training.architectures.srresnet import macs_per_lr_pixel as srresnet_macs
from training.discriminator import Discriminator


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def srresnet_params_by_hand(b: int = 16, w: int = 64, c: int = 3, stages: int = 2) -> int:
    head = 81 * c * w + w + w                      # 9x9 conv + bias, PReLU
    block = 2 * (9 * w * w + 2 * w) + w             # two conv (no bias) + BN (gamma, beta), PReLU
    trunk = 9 * w * w + 2 * w
    up = stages * (9 * w * 4 * w + 4 * w + w)       # conv 64->256 + bias, PReLU
    tail = 81 * w * c + c
    return head + b * block + trunk + up + tail


def test_srresnet_matches_the_paper_layout_and_parameter_count():
    g = SRResNet()
    assert count(g) == srresnet_params_by_hand() == 1_548_547
    assert len(g.blocks) == 16 and len(g.upsample) == 2
    assert g.head[0].kernel_size == (9, 9) and g.tail.kernel_size == (9, 9)
    assert isinstance(g.blocks[0].body[1], nn.BatchNorm2d) and isinstance(g.blocks[0].body[2], nn.PReLU)
    assert g.upsample[0].conv.out_channels == 256 and g.upsample[0].shuffle.upscale_factor == 2


@pytest.mark.parametrize("scale,channels", [(2, 1), (2, 3), (4, 1), (4, 3)])
def test_srresnet_shapes(scale, channels):
    g = SRResNet(SRResNetConfig(scale=scale, channels=channels, blocks=2)).eval()
    assert g(torch.rand(2, channels, 13, 17)).shape == (2, channels, 13 * scale, 17 * scale)
    assert len(g.upsample) == {2: 1, 4: 2}[scale]


def test_srresnet_without_batchnorm_has_none():
    g = SRResNet(SRResNetConfig(batch_norm=False, blocks=3))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.modules())
    with pytest.raises(ValueError, match="power of two"):
        SRResNet(SRResNetConfig(scale=3))


def test_discriminator_matches_the_paper():
    d = Discriminator()
    convs = [m for m in d.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in d.features) == 7
    assert all(m.negative_slope == 0.2 for m in d.modules() if isinstance(m, nn.LeakyReLU))
    dense = [m for m in d.classifier if isinstance(m, nn.Linear)]
    assert [(layer.in_features, layer.out_features) for layer in dense] == [(512 * 6 * 6, 1024), (1024, 1)]
    widths = (3, 64, 64, 128, 128, 256, 256, 512, 512)
    by_hand = sum(9 * i * o for i, o in itertools.pairwise(widths))
    by_hand += 64 + 2 * (64 + 128 + 128 + 256 + 256 + 512 + 512) + 512 * 36 * 1024 + 1024 + 1024 + 1
    assert count(d) == by_hand


@pytest.mark.parametrize("patch", [96, 128, 40])
def test_discriminator_takes_the_patch_size_it_is_built_for(patch):
    d = Discriminator(patch_size=patch).eval()
    logits = d(torch.rand(3, 3, patch, patch))
    assert logits.shape == (3,)
    with pytest.raises(ValueError, match="patches"):
        d(torch.rand(1, 3, patch + 16, patch + 16))


def test_fast_generator_is_cheap_and_works_at_lr_resolution():
    assert fast_macs(FastConfig()) <= srresnet_macs(SRResNetConfig()) / 10
    g = FastSR().eval()
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[-2:]))
             for m in g.modules() if isinstance(m, nn.Conv2d)]
    out = g(torch.rand(1, 3, 20, 30))
    assert out.shape == (1, 3, 80, 120)
    assert sizes and all(tuple(s) == (20, 30) for s in sizes)
    assert sum(isinstance(m, nn.PixelShuffle) for m in g.modules()) == 1
    for h in hooks:
        h.remove()


def test_macs_formula_matches_a_count_by_hooks():
    g = SRResNet(SRResNetConfig(batch_norm=False)).eval()
    total = []
    def hook(m, i, o):
        total.append(o.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1])
    for m in g.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(hook)
    g(torch.rand(1, 3, 8, 8))
    assert sum(total) == srresnet_macs(SRResNetConfig()) * 64


def test_image_skip_starts_from_nearest_upsampling():
    g = SRResNet(SRResNetConfig(blocks=2, batch_norm=False, image_skip=True)).eval()
    torch.nn.init.zeros_(g.tail.weight)
    torch.nn.init.zeros_(g.tail.bias)
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        assert torch.allclose(g(x), torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest"))


def test_srresnet_scale_one_restores_at_the_input_size():
    net = SRResNet(SRResNetConfig(scale=1, channels=1, blocks=2, batch_norm=False, image_skip=True))
    assert len(net.upsample) == 0 and net(torch.rand(2, 1, 20, 36)).shape == (2, 1, 20, 36)
    with pytest.raises(ValueError, match="power of two"):
        SRResNet(SRResNetConfig(scale=3))
