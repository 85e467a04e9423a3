"""Content losses (pixel MSE/L1, VGG19 feature phi_{i,j}) and the adversarial loss of SRGAN."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from training.errors import SrstreamError

# The conv layers of VGG19 per block (i = 1..5), as the paper counts them for phi_{i,j}.
VGG19_CONVS_PER_BLOCK = (2, 2, 4, 4, 4)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGGWeightsMissing(SrstreamError, RuntimeError):
    """ImageNet VGG19 weights are neither cached nor given."""


def _vgg_layer_index(i: int, j: int) -> int:
    """Index in torchvision's `vgg19().features` of the ReLU after the j-th conv of block i."""
    if not 1 <= i <= 5 or not 1 <= j <= VGG19_CONVS_PER_BLOCK[i - 1]:
        raise ValueError(f"phi_{i},{j} does not exist in VGG19: block i in 1..5, conv j within the block")
    index = 0
    for block in range(1, i):
        index += 2 * VGG19_CONVS_PER_BLOCK[block - 1] + 1  # conv+relu pairs, then the max-pool
    return index + 2 * (j - 1) + 1


def load_vgg19_features(weights_file: str | Path | None = None) -> nn.Sequential:
    """VGG19's conv part with ImageNet weights, from `weights_file` or torchvision's cache; never downloads."""
    from torchvision.models import VGG19_Weights, vgg19

    if weights_file is None:
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG19_Weights.IMAGENET1K_V1.url).name
        if not cached.is_file():
            raise VGGWeightsMissing(
                f"VGG19 ImageNet weights not found (looked for {cached}); put torchvision's "
                f"{cached.name} there, pass content.vgg_weights=PATH, or use content.loss='mse' (SRGAN-MSE)"
            )
        weights_file = cached
    weights_file = Path(weights_file)
    if not weights_file.is_file():
        raise VGGWeightsMissing(f"{weights_file}: no such VGG19 weights file")
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    model = vgg19()
    model.load_state_dict(state)
    return model.features


class VGGFeatureLoss(nn.Module):
    """MSE between VGG19 feature maps phi_{i,j} of SR and HR (inputs in [0, 1]), scaled by `rescale`.

    The paper rescales the feature loss by 1/12.75; with inputs in [0, 1] that factor is kept as the default.
    """

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(
        self, i: int = 5, j: int = 4, weights_file: str | Path | None = None, rescale: float = 1 / 12.75
    ) -> None:
        super().__init__()
        features = load_vgg19_features(weights_file)
        self.features = features[: _vgg_layer_index(i, j) + 1].eval()
        for p in self.features.parameters():
            p.requires_grad_(False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.rescale = rescale

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        if sr.shape[1] == 1:  # grey models: VGG sees the grey image as RGB
            sr, hr = sr.expand(-1, 3, -1, -1), hr.expand(-1, 3, -1, -1)
        a = self.features((sr - self.mean) / self.std)
        b = self.features((hr - self.mean) / self.std)
        return F.mse_loss(a * self.rescale, b * self.rescale)


def content_loss(kind: str, vgg_layer: tuple[int, int] = (5, 4), vgg_weights: str | None = None) -> nn.Module:
    """'mse', 'l1' or 'vgg' content loss module taking (sr, hr)."""
    if kind == "mse":
        return nn.MSELoss()
    if kind == "l1":
        return nn.L1Loss()
    if kind == "vgg":
        return VGGFeatureLoss(*vgg_layer, weights_file=vgg_weights)
    raise ValueError(f"unknown content loss {kind!r}: use 'mse', 'l1' or 'vgg'")


def temporal_loss(sr: torch.Tensor, hr: torch.Tensor, frames: int) -> torch.Tensor:
    """L1 of the frame-to-frame change of the error (sr - hr) within each clip of `frames` consecutive frames,
    the batch flattened (clip, frame): the benchmark's flicker, made a loss. A single-frame model can only lower
    it by answering the codec's frame-to-frame noise less, which the content loss alone does not ask."""
    error = (sr - hr).unflatten(0, (-1, frames))
    return (error[:, 1:] - error[:, :-1]).abs().mean()


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(x)), in the numerically stable logits form."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(HR) - log(1 - D(G(LR)))."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake
