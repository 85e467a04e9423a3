"""A causal multi-frame generator for live video: FastSR's trunk plus a recurrent state, in the manner of RLSP
(Fuoli et al. 2019): no flow, no future frames, so it adds no latency.

The state, at LR resolution, holds the previous LR frame, the previous output folded to LR (space-to-depth) and a
few learnt hidden channels. An all-zero state means "no past": a stream's first frame, or after a cut or a gap.

The module is a pure function of one packed tensor, so that the engine's padding, tiling, batching and every
backend (ONNX, TensorRT) take it like any image model:

    in:  (N, C + Q + S, H, W)        the LR frame, its QP plane (Q = 1 with `qp_input`, else 0), then the state
    out: (N, C + S / r^2, rH, rW)    the SR frame, then the new state folded to HR (depth-to-space)

`pack_state` / `unpack_state` are the two folds; S is a multiple of r^2 by construction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from training.architectures.architecture import Architecture, zero_extended
from training.architectures.fast import FastConfig, FastSR


@dataclass(frozen=True)
class RecurrentConfig:
    """FastSR's trunk (scale, channels, width, layers) and the state's learnt hidden channels (at least 1; the
    total state is rounded up to a multiple of scale^2 with more hidden channels)."""

    scale: int = 4
    channels: int = 3
    width: int = 64
    layers: int = 4
    hidden: int = 13
    qp_input: bool = False  # a plane of the codec's QP / 51 beside the frame (training.compression), before the state

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def state_channels(self) -> int:
        """S: previous frame (C), previous output at LR (C r^2) and the hidden channels, a multiple of r^2."""
        r2 = self.scale**2
        s = self.channels + self.channels * r2 + max(1, self.hidden)
        return -(-s // r2) * r2

    @property
    def hidden_channels(self) -> int:
        return self.state_channels - self.channels - self.channels * self.scale**2


class RecurrentSR(nn.Module):
    """FastSR whose first layer also sees the state (through a 3x3 conv, zero at initialisation, so a model made
    from FastSR weights starts as exactly that model) and whose trunk also emits the hidden state."""

    def __init__(self, config: RecurrentConfig = RecurrentConfig()) -> None:
        super().__init__()
        if config.scale < 2:
            raise ValueError(f"RecurrentSR scale must be >= 2, got {config.scale}")
        self.config = config
        w, c, r = config.width, config.channels, config.scale
        fast = FastSR(FastConfig(r, c, w, config.layers, config.qp_input))
        self.head = fast.body[0]  # 5x5 conv of the current frame (and its QP plane)
        self.past = nn.Conv2d(config.state_channels, w, 3, padding=1)
        nn.init.zeros_(self.past.weight)
        assert self.past.bias is not None  # Conv2d's default bias=True
        nn.init.zeros_(self.past.bias)
        self.trunk = fast.body[1:-1]
        self.tail = fast.body[-1]  # to C r^2: the residual over nearest-neighbour upsampling
        self.hidden = nn.Conv2d(w, config.hidden_channels, 3, padding=1)
        self.shuffle = nn.PixelShuffle(r)

    @property
    def scale(self) -> int:
        return self.config.scale

    @property
    def state_channels(self) -> int:
        return self.config.state_channels

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        c, r = self.config.channels, self.config.scale
        q = int(self.config.qp_input)
        x, state = packed[:, :c], packed[:, c + q :]
        feat = self.trunk(self.head(packed[:, : c + q]) + self.past(state))
        sr = self.shuffle(self.tail(feat) + x.repeat_interleave(r * r, dim=1))
        hidden = torch.tanh(self.hidden(feat))
        new_state = torch.cat([x, F.pixel_unshuffle(sr, r), hidden], dim=1)
        return torch.cat([sr, F.pixel_shuffle(new_state, r)], dim=1)

    def load_fast(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Start from a FastSR of the same trunk (its `body.*` weights): the state is ignored until trained. A FastSR
        without the QP input starts a QP-taking model with its QP weights at zero (exactly that model again)."""
        n = len(self.trunk) + 1  # the tail's index in FastSR.body
        mapping = {"body.0": "head", f"body.{n}": "tail"}
        mapping.update({f"body.{i}": f"trunk.{i}" for i in range(1, n)})  # a slice keeps Sequential's keys
        own = {}
        for key, value in state_dict.items():
            layer, _, param = key.rpartition(".")
            if layer in mapping:
                own[f"{mapping[layer]}.{param}"] = value
        if "head.weight" in own:
            own["head.weight"] = zero_extended(own["head.weight"], self.config.channels + int(self.config.qp_input))
        missing = (
            set(self.state_dict()) - set(own) - {k for k in self.state_dict() if k.startswith(("past.", "hidden."))}
        )
        if missing:
            raise ValueError(f"not a FastSR of this trunk: {sorted(missing)[:3]} missing")
        self.load_state_dict(own, strict=False)


def pack_state(frames: torch.Tensor, state: torch.Tensor | None, state_channels: int) -> torch.Tensor:
    """(N, C + Q, H, W) frames (with their QP planes, for a model that takes them) and their (N, S, H, W) states
    (None: no past) as the module's packed input."""
    if state is None:
        state = frames.new_zeros(frames.shape[0], state_channels, *frames.shape[-2:])
    return torch.cat([frames, state.to(frames.dtype)], dim=1)


def unpack_state(out: torch.Tensor, channels: int, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The module's packed output as (SR frames, new states at LR resolution)."""
    return out[:, :channels], F.pixel_unshuffle(out[:, channels:], scale)


def macs_per_lr_pixel(config: RecurrentConfig) -> int:
    """Multiply-accumulates per input pixel (convolutions only)."""
    w, c, r = config.width, config.channels, config.scale
    return (
        25 * (c + int(config.qp_input)) * w
        + 9 * config.state_channels * w
        + config.layers * 9 * w * w
        + 9 * w * c * r * r
        + 9 * w * config.hidden_channels
    )


def receptive_radius(config: RecurrentConfig) -> int:
    """As FastSR's (the state path's 3x3 is no wider than the 5x5 head), for one frame."""
    return 2 + config.layers + 1


def card_fields(model: RecurrentSR) -> dict:
    """What the engine needs to pack the state beside each frame."""
    return {
        "restores": "frames",
        "temporal": {"window": 0, "recurrent": True, "state_channels": model.config.state_channels},
    }


ARCHITECTURE = Architecture(
    "recurrent", RecurrentSR, RecurrentConfig, receptive_radius, macs_per_lr_pixel, card_fields=card_fields
)
