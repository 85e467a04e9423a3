"""SRResNet, the generator of Ledig et al. 2017 (SRGAN), Fig. 4 top."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from training.architectures.architecture import Architecture, load_matching


@dataclass(frozen=True)
class SRResNetConfig:
    """Hyper-parameters of SRResNet; the defaults are the paper's (B=16, 64 filters, x4, RGB, BatchNorm)."""

    scale: int = 4
    channels: int = 3
    width: int = 64
    blocks: int = 16
    batch_norm: bool = True
    image_skip: bool = False  # not in the paper: add the nearest-upsampled input, so the net learns a residual

    def to_dict(self) -> dict:
        return asdict(self)


def _norm(width: int, enabled: bool) -> nn.Module:
    return nn.BatchNorm2d(width) if enabled else nn.Identity()


class ResidualBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus the identity."""

    def __init__(self, width: int, batch_norm: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm),
            _norm(width, batch_norm),
            nn.PReLU(width),
            nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm),
            _norm(width, batch_norm),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SubPixelStage(nn.Module):
    """conv 64->256, PixelShuffle(2), PReLU: one x2 step of Shi et al.'s sub-pixel convolution."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.shuffle(self.conv(x)))


class SRResNet(nn.Module):
    """Maps an image in [0, 1] (N, C, H, W) to one in [0, 1] (N, C, rH, rW); the output is not clamped."""

    def __init__(self, config: SRResNetConfig = SRResNetConfig()) -> None:
        super().__init__()
        stages = math.log2(config.scale)
        # Scale 1 has no sub-pixel stage: a restoration net at the input's size (thick-slice deblurring).
        if config.scale < 1 or stages != int(stages):
            raise ValueError(f"SRResNet scale must be a power of two (1, 2, 4, ...), got {config.scale}")
        self.config = config
        w = config.width
        self.head = nn.Sequential(nn.Conv2d(config.channels, w, 9, padding=4), nn.PReLU(w))
        self.blocks = nn.Sequential(*[ResidualBlock(w, config.batch_norm) for _ in range(config.blocks)])
        self.trunk = nn.Sequential(
            nn.Conv2d(w, w, 3, padding=1, bias=not config.batch_norm), _norm(w, config.batch_norm)
        )
        self.upsample = nn.Sequential(*[SubPixelStage(w) for _ in range(int(stages))])
        self.tail: nn.Module = nn.Conv2d(w, config.channels, 9, padding=4)  # inference may fuse it into a Sequential

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        features = features + self.trunk(self.blocks(features))
        out = self.tail(self.upsample(features))
        if self.config.image_skip:
            # Nearest-neighbour upsampling written as repeat + PixelShuffle: exports as DepthToSpace, no Resize.
            r = self.config.scale
            out = out + nn.functional.pixel_shuffle(x.repeat_interleave(r * r, dim=1), r)
        return out

    def load_compatible(self, state_dict: dict[str, torch.Tensor]) -> list[str]:
        """Start from an SRResNet of the same trunk at another scale: every tensor whose name and shape match is
        taken over (at x2 from x4: the first sub-pixel stage and the tail as well); the rest keeps its fresh
        initialisation. Returns the names of `state_dict` not taken over."""
        return load_matching(self, state_dict)


def macs_per_lr_pixel(config: SRResNetConfig) -> int:
    """Multiply-accumulates per input pixel (convolutions only), for comparing generators' cost."""
    w, c = config.width, config.channels
    macs = 81 * c * w + config.blocks * 2 * 9 * w * w + 9 * w * w
    area = 1
    for _ in range(int(math.log2(config.scale))):
        macs += area * 9 * w * 4 * w
        area *= 4
    return macs + area * 81 * w * c


def receptive_radius(config: SRResNetConfig) -> int:
    """9x9 head, two 3x3 per block, trunk 3x3, sub-pixel stages (3x3 at growing scales), 9x9 tail at full scale."""
    return 4 + 2 * config.blocks + 1 + 2 + 1


ARCHITECTURE = Architecture("srresnet", SRResNet, SRResNetConfig, receptive_radius, macs_per_lr_pixel)
