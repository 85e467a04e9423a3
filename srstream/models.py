"""What the engine runs: a generator and its descriptor, whatever file it came from."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from torch import nn

from training import architectures
from training.descriptor import ModelDescriptor
from training.weights import ModelLoadError, load_checkpoint, load_generator

THIRD_PARTY_SUFFIXES = {".pth", ".ckpt"}
THIRD_PARTY_RADIUS = 32  # context pixels a tile gets for an architecture we do not know (spandrel's): ample for SR nets


@dataclass(frozen=True)
class ModelSpec:
    """A generator ready for inference (fp32, eval), what it is (`descriptor`), and how far its receptive field
    reaches in input pixels (a tile needs this much context on each side to match the untiled output)."""

    module: nn.Module
    descriptor: ModelDescriptor
    receptive_radius: int

    @classmethod
    def of(cls, module: nn.Module, descriptor: ModelDescriptor) -> ModelSpec:
        """`module` described by `descriptor`, its receptive field worked out."""
        return cls(module, descriptor, receptive_radius(module))

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def scale(self) -> int:
        return self.descriptor.scale

    @property
    def channels(self) -> int:
        return self.descriptor.channels

    @property
    def input_channels(self) -> int:
        """What the network takes: the frame's channels and a recurrent model's packed state."""
        return self.descriptor.input_channels

    @property
    def recurrent(self) -> bool:
        """It carries a state from frame to frame (`Upscaler.step`)."""
        return self.descriptor.recurrent and self.descriptor.state_channels > 0

    @property
    def multiple_of(self) -> int:
        return self.descriptor.multiple_of

    def tuned(self, module: nn.Module, **card: object) -> ModelSpec:
        """The same model with other weights (tuned on one input), its card extended with `card`."""
        return replace(self, module=module, descriptor=self.descriptor.with_card(**card))


def receptive_radius(module: nn.Module) -> int:
    """Input pixels of context each output pixel depends on: the architecture's own figure for ours, a safe margin
    for others."""
    architecture = architectures.of(module)
    return architecture.receptive_radius(module.config) if architecture is not None else THIRD_PARTY_RADIUS


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
        except Exception as exc:  # noqa: BLE001
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
    ours = ModelDescriptor.third_party(
        path.stem,
        descriptor.architecture.id,
        descriptor.scale,
        descriptor.input_channels,
        max(1, descriptor.size_requirements.multiple_of),
    )
    return ModelSpec.of(descriptor.model.float().eval(), ours)


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A shipped model name, one of our .safetensors (with card) or checkpoints, or a third-party upscaler file."""
    path = Path(str(name_or_path))
    third_party = path.suffix in THIRD_PARTY_SUFFIXES or (
        path.suffix == ".safetensors" and path.is_file() and not path.with_suffix(".json").is_file()
    )
    if third_party and path.is_file():
        return load_third_party(path)
    module, descriptor = load_generator(name_or_path)
    return ModelSpec.of(module, descriptor)
