"""Weights on disk: fp16 safetensors plus a JSON model card; shipped models by name; trainer checkpoints.

Nothing here unpickles code: safetensors holds only tensors, and trainer checkpoints are read with
`torch.load(weights_only=True)`, which refuses any pickle that would construct arbitrary objects.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from training import architectures
from training.atomic import atomic_path
from training.descriptor import ModelDescriptor
from training.errors import SrstreamError

if TYPE_CHECKING:
    from training.architectures.architecture import GeneratorConfig

SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"


class ModelLoadError(SrstreamError, ValueError):
    """A model file is missing, unsafe, or not one of ours."""


def build_generator(architecture: str, config: dict[str, Any]) -> nn.Module:
    """A freshly initialised generator of a registered architecture."""
    return architectures.get(architecture).build(config)


def architecture_of(model: nn.Module) -> str:
    """The registry name of a generator instance."""
    architecture = architectures.of(model)
    if architecture is None:
        raise ValueError(f"{type(model).__name__} is not a registered generator")
    return architecture.name


def save_weights(model: nn.Module, path: str | Path, card: dict[str, Any]) -> Path:
    """Write `path` (.safetensors, fp16) and its card `path.with_suffix('.json')`; returns the weights path."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: v.detach().to("cpu", torch.float16).contiguous() if v.is_floating_point() else v.detach().cpu()
        for k, v in model.state_dict().items()
    }
    architecture = architectures.get(architecture_of(model))
    config = cast("GeneratorConfig", model.config)  # a registered generator (architecture_of): its config dataclass
    full_card = {
        "architecture": architecture.name,
        "config": config.to_dict(),
        "scale": config.scale,
        "channels": config.channels,
        "value_range": [0.0, 1.0],
        **card,
        **architecture.card_fields(model),  # what the engine needs of this architecture (a recurrent state)
    }
    with atomic_path(path) as tmp:
        save_file(state, tmp, metadata={"format": "pt"})
    with atomic_path(path.with_suffix(".json")) as tmp:
        Path(tmp).write_text(json.dumps(full_card, indent=2) + "\n")
    return path


def shipped_models() -> dict[str, ModelDescriptor]:
    """Descriptors of the shipped models, by name."""
    return {
        p.stem: ModelDescriptor.from_card(json.loads(p.read_text()), p.stem)
        for p in sorted(SHIPPED_DIR.glob("*.json"))
        if p.with_suffix(".safetensors").is_file()
    }


def resolve_model_path(name_or_path: str | Path) -> Path:
    """A shipped model's name, or a path, to an existing file path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = SHIPPED_DIR / f"{name_or_path}.safetensors"
    if shipped.is_file():
        return shipped
    names = ", ".join(shipped_models()) or "none"
    raise ModelLoadError(f"{name_or_path}: no such model file or shipped model (shipped: {names})")


def _generator_from_state(
    state: dict[str, torch.Tensor], card: dict[str, Any], source: Path
) -> tuple[nn.Module, ModelDescriptor]:
    try:
        descriptor = ModelDescriptor.from_card(card, source.stem)
        model = build_generator(descriptor.architecture, descriptor.config)
        model.load_state_dict({k: v.float() for k, v in state.items()})
        facts = architectures.get(descriptor.architecture).card_fields(model)
        if any(card.get(k) != v for k, v in facts.items()):  # a trainer checkpoint's card from before they were kept
            descriptor = ModelDescriptor.from_card({**card, **facts}, source.stem)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"{source}: weights do not match their model card ({exc})") from None
    return model.eval(), descriptor


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A trainer checkpoint (.pt), read with weights_only=True so that a pickle carrying code is refused."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unsafe pickle"
        raise ModelLoadError(f"{path}: refused to load, the pickle holds more than tensors ({first})") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds on foreign bytes; all mean the same to the user
        raise ModelLoadError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None


def load_generator(name_or_path: str | Path) -> tuple[nn.Module, ModelDescriptor]:
    """Load a shipped model, a .safetensors file with its card, or a trainer checkpoint; fp32, eval mode, with
    its descriptor."""
    path = resolve_model_path(name_or_path)
    if path.suffix == ".safetensors":
        card_path = path.with_suffix(".json")
        if not card_path.is_file():
            raise ModelLoadError(f"{path}: model card {card_path.name} is missing beside it")
        try:
            card = json.loads(card_path.read_text())
            state = load_file(path)
        except json.JSONDecodeError as exc:
            raise ModelLoadError(f"{card_path}: model card is not valid JSON ({exc})") from None
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(f"{path}: not a readable safetensors file ({exc})") from None
        return _generator_from_state(state, card, path)
    checkpoint = load_checkpoint(path)
    if not isinstance(checkpoint, dict) or "generator" not in checkpoint or "card" not in checkpoint:
        raise ModelLoadError(f"{path}: not a model of ours (no generator weights with a model card)")
    # A run with train.ema ships the moving average, so its checkpoint loads as that too.
    state = checkpoint.get("generator_ema", checkpoint["generator"])
    return _generator_from_state(state, checkpoint["card"], path)
