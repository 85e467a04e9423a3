"""What the rest of the project may know of an architecture: one `Architecture` entry, defined beside the network
in its own file (as spandrel's `architectures/NAME`) and registered once in `training.architectures`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Protocol

import torch
from torch import nn


class GeneratorConfig(Protocol):
    """What every architecture's config (a frozen dataclass, kept as its module's `config`) offers the rest."""

    @property
    def scale(self) -> int: ...

    @property
    def channels(self) -> int: ...

    def to_dict(self) -> dict[str, Any]: ...


def load_matching(module: nn.Module, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Load every tensor of `state_dict` whose name and shape `module` has (a start from a kindred model: another
    scale, an added input or branch); the rest of `module` keeps its fresh initialisation. Returns the names of
    `state_dict` not taken over."""
    own = module.state_dict()
    skipped = [k for k, v in state_dict.items() if k not in own or own[k].shape != v.shape]
    module.load_state_dict({k: v for k, v in state_dict.items() if k not in skipped}, strict=False)
    return skipped


def zero_extended(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A convolution's weight given zero weights on added input channels (the codec's QP plane): the widened model
    begins as exactly the one it started from. A weight that has them already is returned as it is."""
    extra = in_channels - weight.shape[1]
    if extra <= 0:
        return weight
    return torch.cat([weight, weight.new_zeros(weight.shape[0], extra, *weight.shape[2:])], dim=1)


def no_card_fields(model: nn.Module) -> dict[str, Any]:
    """An image model's card needs nothing beyond the common fields."""
    return {}


@dataclass(frozen=True)
class Architecture:
    """One generator architecture: its module and config types and the facts the trainer, the weights and the
    engine ask of it."""

    name: str  # the card's and the training config's `architecture`
    module: type[nn.Module]  # built as module(config)
    config: type  # a frozen dataclass of the constructor's settings, with to_dict()
    receptive_radius: Callable[[Any], int]  # config -> input pixels of context each output pixel depends on
    macs_per_lr_pixel: Callable[[Any], int]  # config -> multiply-accumulates per input pixel (convolutions)
    card_fields: Callable[[Any], dict[str, Any]] = no_card_fields  # module -> what its model card adds
    multiple_of: int = 1  # input height and width must be multiples of this (the engine pads)

    @property
    def config_keys(self) -> tuple[str, ...]:
        """The training config's `model.*` keys this architecture takes."""
        return tuple(f.name for f in fields(self.config))

    def defaults(self) -> dict[str, Any]:
        """Each config key's default value."""
        return self.config().to_dict()

    def build(self, config: dict[str, Any]) -> nn.Module:
        """A freshly initialised module from `config` (its config keys)."""
        return self.module(self.config(**config))
