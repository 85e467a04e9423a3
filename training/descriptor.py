"""What a model is, in one typed object: the only place that reads a model card's keys.

A `ModelDescriptor` is built once, from one of our JSON cards (`from_card`) or from what a third-party loader found
in a file (`third_party`), and every front door asks it questions (`restores`, `through_plane`, `transposable`,
`slab_thickness`, `evaluations`) instead of reading card keys. The card itself (`card`) is kept only to be written
back out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

DEFAULT_WIDTH = 64  # feature channels assumed where a card does not say (third-party models)


class Restores(enum.Enum):
    """What a model takes in and gives back."""

    IMAGE = "image"  # one frame (colour or grey) -> one frame `scale` times larger
    THICK_SLICES = "thick-slices"  # scale 1: slices of one slab thickness, interpolated onto the fine grid, refined
    ANY_RATIO = "any-ratio"  # scale 1: thick slices of any spacing, thickness and profile, refined
    FRAMES = "frames"  # video: the current frame and earlier ones (a window or a recurrent state)


THROUGH_PLANE_DEGRADATIONS = {"slab": Restores.THICK_SLICES, "acquisition": Restores.ANY_RATIO}


@dataclass(frozen=True)
class Evaluation:
    """One measured row of a model card: a benchmark set (Y-PSNR/SSIM) or a volume task (gain over cubic)."""

    name: str
    psnr_y: float | None = None
    ssim_y: float | None = None
    task: str | None = None
    gain_db: float | None = None
    baseline: str = "cubic"  # what a task's gain is over
    worst_gain_db: float | None = None  # a task over several clips or images: the gain on the worst one
    fps: float | None = None  # a video task: frames a second at the LR size on the benchmark's CPU
    flicker_ratio: float | None = None  # a video task: the error's frame-to-frame change against bicubic's

    def summary(self) -> str:
        """The row as `srstream models` prints it."""
        if self.psnr_y is not None:
            return f"{self.name} {self.psnr_y:.2f} dB"
        if self.task is not None and self.gain_db is not None:
            return f"{self.task} {self.gain_db:+.2f} dB vs {self.baseline}"
        return self.name


@dataclass(frozen=True)
class ModelDescriptor:
    """Name, architecture, scale, channels, what it restores, size multiple and the measured rows of one model."""

    name: str
    architecture: str
    scale: int
    channels: int
    restores: Restores = Restores.IMAGE
    config: dict[str, Any] = field(default_factory=dict)  # the architecture's constructor arguments
    slab_thickness: int = 0  # THICK_SLICES: the thickness (in fine slices) it undoes
    temporal_window: int = 1  # FRAMES: how many frames it sees (1 = the current one only)
    recurrent: bool = False  # FRAMES: carries a state from frame to frame
    state_channels: int = 0  # recurrent: S, the state's channels at LR resolution (packed beside the frame)
    takes_qp: bool = False  # a plane of the codec's QP / 51 goes in beside the frame (training.compression)
    multiple_of: int = 1  # input height and width must be multiples of this (the engine pads)
    width: int = DEFAULT_WIDTH  # feature channels at the widest layer, for the engine's memory estimate
    source: str = "srstream"  # "srstream" for our cards, "spandrel" for third-party files
    evaluations: tuple[Evaluation, ...] = ()
    card: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_card(cls, card: dict[str, Any], default_name: str = "model") -> ModelDescriptor:
        """Read one of our model cards (as `training.weights.save_weights` writes them); KeyError/TypeError where
        a required key is missing or malformed."""
        config = dict(card["config"])
        training = card.get("training", {})
        scale = int(card["scale"])
        restores = Restores(card["restores"]) if "restores" in card else Restores.IMAGE
        if scale == 1 and training.get("degradation") in THROUGH_PLANE_DEGRADATIONS:
            restores = THROUGH_PLANE_DEGRADATIONS[training["degradation"]]
        temporal = card.get("temporal", {})
        return cls(
            name=card.get("name", default_name),
            architecture=card["architecture"],
            scale=scale,
            channels=int(card["channels"]),
            restores=restores,
            config=config,
            slab_thickness=int(training["thickness"]) if restores is Restores.THICK_SLICES else 0,
            temporal_window=int(temporal.get("window", 1)),
            recurrent=bool(temporal.get("recurrent", False)),
            state_channels=int(temporal.get("state_channels", 0)),
            takes_qp=bool(config.get("qp_input", False)),
            width=int(config.get("width", DEFAULT_WIDTH)),
            evaluations=tuple(_evaluation(k, v) for k, v in card.get("evaluation", {}).items()),
            card=card,
        )

    @classmethod
    def third_party(
        cls, name: str, architecture: str, scale: int, channels: int, multiple_of: int = 1
    ) -> ModelDescriptor:
        """A model found in someone else's file (spandrel): an image upscaler, nothing measured."""
        card = {"name": name, "architecture": architecture, "scale": scale, "channels": channels, "source": "spandrel"}
        return cls(
            name=name,
            architecture=architecture,
            scale=scale,
            channels=channels,
            multiple_of=multiple_of,
            source="spandrel",
            card=card,
        )

    @property
    def input_channels(self) -> int:
        """What the network itself takes: the frame's channels, the QP plane where it takes one, and a recurrent
        model's state packed beside them."""
        return self.channels + int(self.takes_qp) + self.state_channels

    @property
    def through_plane(self) -> bool:
        """A scale-1 model that refines thick slices interpolated onto a fine grid (one ratio or any)."""
        return self.restores in (Restores.THICK_SLICES, Restores.ANY_RATIO)

    @property
    def transposable(self) -> bool:
        """Whether its input may be transposed (TTA): not for a through-plane model, whose blur has a direction."""
        return not self.through_plane

    @property
    def through_plane_factor(self) -> int:
        """How much it refines a slice axis by default: its slab thickness, or its scale; 0 for any ratio."""
        if self.restores is Restores.ANY_RATIO:
            return 0
        return self.slab_thickness or self.scale

    @property
    def scale_label(self) -> str:
        """x4, x4t (thick slices of 4), x*t (any ratio)."""
        if self.restores is Restores.ANY_RATIO:
            return "x*t"
        if self.restores is Restores.THICK_SLICES:
            return f"x{self.slab_thickness}t"
        return f"x{self.scale}"

    @property
    def training(self) -> dict[str, Any]:
        """How it was trained, as its card says (empty for third-party files)."""
        return dict(self.card.get("training", {}))

    @property
    def camera_degradation(self) -> dict[str, Any] | None:
        """The camera degradation it was trained with (`training.camera_degrade.CameraSettings` values), if any."""
        recorded = self.training.get("camera")
        return dict(recorded) if isinstance(recorded, dict) else None

    def evaluation(self, name: str) -> Evaluation | None:
        """The row measured on `name` (Set5, t1_head, ...), if any."""
        return next((e for e in self.evaluations if e.name == name), None)

    def with_card(self, **extra: Any) -> ModelDescriptor:
        """The same model under another name or with more card entries (a tuned copy, say)."""
        name = extra.pop("name", self.name)
        return replace(self, name=name, card={**self.card, "name": name, **extra})


def with_evaluation(card: dict[str, Any], name: str, row: dict[str, Any]) -> dict[str, Any]:
    """A copy of `card` with the measured `row` recorded under `name` (replacing an older one)."""
    return {**card, "evaluation": {**card.get("evaluation", {}), name: row}}


def _evaluation(name: str, row: dict[str, Any]) -> Evaluation:
    return Evaluation(
        name=name,
        psnr_y=row.get("psnr_y"),
        ssim_y=row.get("ssim_y"),
        task=row.get("task"),
        gain_db=row.get("gain_db"),
        baseline=row.get("baseline", "cubic"),
        worst_gain_db=row.get("worst_gain_db"),
        fps=row.get("fps"),
        flicker_ratio=row.get("flicker_ratio"),
    )
