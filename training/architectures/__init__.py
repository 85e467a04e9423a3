"""The generator architectures, one file each, and their registry: the only list of them in the project.

Each file holds the network, its config dataclass and an `ARCHITECTURE` entry (`architecture.Architecture`): how to
build it, the config keys it takes, its receptive radius, its cost and what its model card adds. The trainer, the
weights loader and the engine ask this registry, never the classes themselves.
"""

from __future__ import annotations

from torch import nn

from training.architectures import fast, recurrent, srresnet
from training.architectures.architecture import Architecture

ARCHITECTURES: dict[str, Architecture] = {
    a.name: a for a in (srresnet.ARCHITECTURE, fast.ARCHITECTURE, recurrent.ARCHITECTURE)
}


def get(name: str) -> Architecture:
    """The registered architecture `name`; ValueError naming the known ones otherwise."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}: one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def of(module: nn.Module) -> Architecture | None:
    """The registered architecture of a module instance (None: not one of ours, e.g. a spandrel model)."""
    for architecture in ARCHITECTURES.values():
        if type(module) is architecture.module:
            return architecture
    return None


__all__ = ["ARCHITECTURES", "Architecture", "get", "of"]
