"""What the engine runs: one descriptor for any generator, whatever file it came from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from training.fast_generator import FastSR
from training.srresnet import SRResNet
from training.weights import ModelLoadError, load_checkpoint, load_generator

THIRD_PARTY_SUFFIXES = {".pth", ".ckpt"}


@dataclass
class ModelSpec:
    """A generator ready for inference: module (fp32, eval), scale, channels, how far its receptive field reaches."""

    module: nn.Module
    scale: int
    channels: int
    name: str
    receptive_radius: int  # in input pixels: a tile needs this much context on each side to match untiled output
    card: dict[str, Any] = field(default_factory=dict)
    multiple_of: int = 1  # input height and width must be multiples of this (the engine pads)


def receptive_radius(module: nn.Module) -> int:
    """Input pixels of context each output pixel depends on, for our generators; a safe default for others."""
    if isinstance(module, SRResNet):
        c = module.config
        # 9x9 head, two 3x3 per block, trunk 3x3, sub-pixel stages (3x3 at growing scales), 9x9 tail at full scale.
        return 4 + 2 * c.blocks + 1 + 2 + 1
    if isinstance(module, FastSR):
        return 2 + module.config.layers + 1
    return 32


def load_third_party(path: str | Path) -> ModelSpec:
    """A community upscaler (ESRGAN, Real-ESRGAN, SwinIR, ... as .pth/.ckpt/.safetensors) through spandrel.

    The file is read by us, with `torch.load(weights_only=True)` or safetensors, and only the state dict is handed
    to spandrel: nothing in the file can run code, and TorchScript archives are not accepted.
    """
    path = Path(path)
    try:
        import spandrel
    except ImportError:
        raise ModelLoadError(f"{path}: third-party models need spandrel (pip install 'srstream[thirdparty]')") from None
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            state = load_file(path)
        except Exception as exc:
            raise ModelLoadError(f"{path}: not a readable safetensors file ({type(exc).__name__})") from None
    else:
        state = load_checkpoint(path)
    if not isinstance(state, dict):
        raise ModelLoadError(f"{path}: holds no state dict")
    try:
        descriptor = spandrel.ModelLoader().load_from_state_dict(spandrel.canonicalize_state_dict(state))
    except spandrel.UnsupportedModelError:
        raise ModelLoadError(f"{path}: not a model architecture spandrel knows") from None
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a loadable upscaler ({type(exc).__name__}: {exc})") from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor) or descriptor.purpose not in ("SR", "Restoration"):
        raise ModelLoadError(f"{path}: a {descriptor.architecture.name} model is not an image upscaler")
    if descriptor.input_channels != descriptor.output_channels:
        raise ModelLoadError(f"{path}: {descriptor.input_channels} channels in but {descriptor.output_channels} out")
    req = descriptor.size_requirements
    card = {"name": path.stem, "architecture": descriptor.architecture.id, "scale": descriptor.scale,
            "channels": descriptor.input_channels, "source": "spandrel"}
    module = descriptor.model.float().eval()
    return ModelSpec(module=module, scale=descriptor.scale, channels=descriptor.input_channels, name=path.stem,
                     receptive_radius=receptive_radius(module), card=card, multiple_of=max(1, req.multiple_of))


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A shipped model name, one of our .safetensors (with card) or checkpoints, or a third-party upscaler file."""
    path = Path(str(name_or_path))
    third_party = path.suffix in THIRD_PARTY_SUFFIXES or (
        path.suffix == ".safetensors" and path.is_file() and not path.with_suffix(".json").is_file())
    if third_party and path.is_file():
        return load_third_party(path)
    module, card = load_generator(name_or_path)
    return ModelSpec(module=module, scale=card["scale"], channels=card["channels"],
                     name=card.get("name", Path(str(name_or_path)).stem),
                     receptive_radius=receptive_radius(module), card=card)
