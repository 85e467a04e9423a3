"""Which model and backend `srmed` runs: the default model, the engine the options ask for, and checks of the pair."""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from medical.volume import VolumeError

if TYPE_CHECKING:
    from srstream.engine import Upscaler
    from srstream.models import ModelSpec


def default_model(scale: float, through_plane: bool) -> str:
    """Through-plane: `mri-thick` (any ratio) where shipped, else mri-thick-xN; in-plane: mri-xN."""
    from training.weights import shipped_models

    models = shipped_models()
    if through_plane:
        if "mri-thick" in models:
            return "mri-thick"
        if f"mri-thick-x{scale:g}" in models:
            return f"mri-thick-x{scale:g}"
    return f"mri-x{scale:g}"


def build_upscaler(args: argparse.Namespace) -> Upscaler:
    """The engine for `args.model` on `args.backend`, with the batch, TTA and precision asked for."""
    from srstream.engine import Upscaler

    return Upscaler(args.model, backend=args.backend, batch_size=args.batch, tta=args.tta, precision=args.precision)


def check_model(upscaler: Upscaler, args: argparse.Namespace) -> None:
    """Refuse a model that cannot do what the options ask (a thick-slice model in-plane, another scale)."""
    descriptor = upscaler.spec.descriptor
    if descriptor.through_plane and not args.through_plane:
        raise VolumeError(f"model {descriptor.name} restores thick slices: use it with --through-plane")
    if not args.through_plane and upscaler.scale != args.scale:
        raise VolumeError(f"model {descriptor.name} is x{upscaler.scale}, asked for --scale {args.scale:g}")


def with_spec(upscaler: Upscaler, spec: ModelSpec) -> Upscaler:
    """An engine like `upscaler` running `spec` (other weights)."""
    from srstream.backends.registry import backend_type
    from srstream.engine import Upscaler

    backend = backend_type(upscaler.backend_name).for_tuned_weights or upscaler.backend_name
    return Upscaler(spec, backend=backend, batch_size=upscaler.batch_size, tta=upscaler.tta,
                    precision=upscaler.precision)
