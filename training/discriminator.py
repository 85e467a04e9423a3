"""The SRGAN discriminator of Ledig et al. 2017, Fig. 4 bottom."""

from __future__ import annotations

import math

import torch
from torch import nn

FILTERS = (64, 64, 128, 128, 256, 256, 512, 512)


class Discriminator(nn.Module):
    """Eight 3x3 convs (stride 2 on every second), LeakyReLU(0.2), BN after all but the first, dense 1024, dense 1.

    Returns logits; the probability is their sigmoid. Train with `BCEWithLogitsLoss`, the stable form of -log D.
    `patch_size` is the HR crop size it is trained on: it fixes the size of the first dense layer.
    """

    def __init__(self, channels: int = 3, patch_size: int = 96) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, size = channels, patch_size
        for i, out_ch in enumerate(FILTERS):
            stride = 2 if i % 2 == 1 else 1
            layers.append(nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
            size = math.ceil(size / stride)
        self.patch_size = patch_size
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(FILTERS[-1] * size * size, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.patch_size or x.shape[-2] != self.patch_size:
            raise ValueError(f"discriminator built for {self.patch_size}px patches got {tuple(x.shape[-2:])}")
        return self.classifier(self.features(x)).squeeze(1)
