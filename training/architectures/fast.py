"""A fast generator for CPU and real-time use: ESPCN-style (Shi et al. 2016), every convolution at LR resolution."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from training.architectures.architecture import Architecture, load_matching, zero_extended


@dataclass(frozen=True)
class FastConfig:
    """Width and depth of the LR-resolution trunk; defaults cost about 8% of SRResNet's MACs per pixel."""

    scale: int = 4
    channels: int = 3
    width: int = 64
    layers: int = 4
    qp_input: bool = False  # a plane of the codec's QP / 51 beside the frame (training.compression)
    qp_modulation: int = 0  # with qp_input: hidden units of a per-pixel MLP of the QP that scales and shifts every
    # trunk layer's features (FiLM); 0 = the QP enters only as the head's fourth input channel
    context: int = 0  # 3x3 layers of a branch at half the input's resolution (0 = none): twice the reach for a
    # quarter of the cost per layer, so that a model can see past the codec's 8 and 16 px blocks

    def to_dict(self) -> dict:
        return asdict(self)


class FastSR(nn.Module):
    """5x5 conv, `layers` 3x3 convs (PReLU), a 3x3 conv to C*r^2 channels and one PixelShuffle(r).

    The input is repeated r^2 times and added before the shuffle, so the network learns only the residual over
    nearest-neighbour upsampling; that costs no convolution and makes training converge much sooner. With
    `qp_input` the first convolution also sees the QP plane (input channel C), which the residual leaves out; with
    `qp_modulation` too, the QP also scales and shifts the features after the head and after every trunk layer.
    """

    def __init__(self, config: FastConfig = FastConfig()) -> None:
        super().__init__()
        if config.scale < 2:
            raise ValueError(f"FastSR scale must be >= 2, got {config.scale}")
        if config.qp_modulation and not config.qp_input:
            raise ValueError("FastSR qp_modulation needs qp_input (the QP plane it reads)")
        self.config = config
        w, c, r = config.width, config.channels, config.scale
        layers: list[nn.Module] = [nn.Conv2d(c + int(config.qp_input), w, 5, padding=2), nn.PReLU(w)]
        for _ in range(config.layers):
            layers += [nn.Conv2d(w, w, 3, padding=1), nn.PReLU(w)]
        layers.append(nn.Conv2d(w, c * r * r, 3, padding=1))
        self.body = nn.Sequential(*layers)
        # after the head (body.0-1), outside `body` so that the trunk keeps its names and loads from a plain FastSR
        self.context = HalfResolution(w, config.context) if config.context else None
        self.modulation = QpModulation(w, config.layers + 1, config.qp_modulation) if config.qp_modulation else None
        self.shuffle = nn.PixelShuffle(r)

    @property
    def scale(self) -> int:
        return self.config.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r2 = self.config.scale**2
        frame = x[:, : self.config.channels] if self.config.qp_input else x
        if self.context is None and self.modulation is None:  # the body in one call
            features = self.body(x)
        else:
            features = x
            films = self.modulation.films(x[:, self.config.channels :]) if self.modulation is not None else None
            for i, layer in enumerate(self.body):
                features = layer(features)
                if i == 1 and self.context is not None:  # after the head's conv and PReLU
                    features = self.context(features)
                if films is not None and i % 2 == 1 and i < len(self.body) - 1:  # after each PReLU
                    gamma, beta = next(films)
                    features = torch.addcmul(features + beta, features, gamma)
        return self.shuffle(features + frame.repeat_interleave(r2, dim=1))

    def load_compatible(self, state_dict: dict[str, torch.Tensor]) -> list[str]:
        """Start from a FastSR of the same trunk: without the QP input (its weights on the QP at zero, so this one
        begins as exactly that model), or of another scale (the tail, whose shape differs, keeps its fresh
        initialisation). Returns the names not taken over."""
        state = dict(state_dict)
        if "body.0.weight" in state:
            state["body.0.weight"] = zero_extended(
                state["body.0.weight"], self.config.channels + int(self.config.qp_input)
            )
        return load_matching(self, state)


class HalfResolution(nn.Module):
    """A residual branch at half resolution: a strided 3x3 conv down, `layers` 3x3 convs, bilinear back up and a
    1x1 conv that starts at zero, so a model given this branch begins as the model without it."""

    def __init__(self, width: int, layers: int) -> None:
        super().__init__()
        convs: list[nn.Module] = [nn.Conv2d(width, width, 3, stride=2, padding=1), nn.PReLU(width)]
        for _ in range(layers):
            convs += [nn.Conv2d(width, width, 3, padding=1), nn.PReLU(width)]
        self.down = nn.Sequential(*convs)
        self.out = nn.Conv2d(width, width, 1)
        for parameter in self.out.parameters():
            nn.init.zeros_(parameter)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.down(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x + self.out(up)


class QpModulation(nn.Module):
    """FiLM (Perez et al. 2018) from the QP plane: a per-pixel MLP (1 -> hidden -> 2 x width per modulated layer)
    gives each layer's features a scale (1 + gamma) and a shift (beta). Its last layers start at zero, so a model
    given it begins as the model without it. The input channel alone can only shift the head's features; this lets
    every layer act differently on clean and heavily quantised input."""

    def __init__(self, width: int, count: int, hidden: int) -> None:
        super().__init__()
        self.width = width
        self.embed = nn.Sequential(nn.Conv2d(1, hidden, 1), nn.PReLU(hidden))
        self.heads = nn.ModuleList(nn.Conv2d(hidden, 2 * width, 1) for _ in range(count))
        for head in self.heads:
            for parameter in head.parameters():
                nn.init.zeros_(parameter)

    def films(self, qp: torch.Tensor) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Each modulated layer's (gamma, beta) in turn, computed only when reached (one layer's planes held at a
        time, not every layer's)."""
        hidden = self.embed(qp)
        for head in self.heads:
            gamma, beta = head(hidden).split(self.width, dim=1)
            yield gamma, beta


def macs_per_lr_pixel(config: FastConfig) -> int:
    """Multiply-accumulates per input pixel (convolutions only; the half-resolution branch at a quarter)."""
    w, c, r = config.width, config.channels, config.scale
    context = ((config.context + 1) * 9 * w * w) // 4 + w * w if config.context else 0
    film = config.qp_modulation * (1 + (config.layers + 1) * 2 * w) if config.qp_modulation else 0
    return 25 * (c + int(config.qp_input)) * w + config.layers * 9 * w * w + context + film + 9 * w * c * r * r


def receptive_radius(config: FastConfig) -> int:
    """The 5x5 head, one 3x3 per layer and the 3x3 tail at the input's resolution; the half-resolution branch
    reaches two input pixels a layer, one more for its strided conv and one for the bilinear step back up."""
    context = 2 * (config.context + 1) + 1 if config.context else 0
    return 2 + context + config.layers + 1


ARCHITECTURE = Architecture("fast", FastSR, FastConfig, receptive_radius, macs_per_lr_pixel)
