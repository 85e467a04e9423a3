"""Self-supervised tuning before a volume is upscaled: how long (the budget and its constants), and the tuned engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from medical.volume import Volume

if TYPE_CHECKING:
    from medical.plan import Plan
    from srstream.engine import Upscaler

ECLARE_PATCHES = 1_000_000  # ECLARE's self-supervised budget: about a million patches per volume
GPU_SECONDS_CAP = 900.0


@dataclass(frozen=True)
class Budget:
    """How long to tune: seconds, and at most this many patches (None: no patch limit)."""

    seconds: float
    patches: int | None


def self_supervised_budget(option: str, upscaler: Upscaler, through_plane: bool) -> Budget | None:
    """The tuning budget, or None. 'auto' (the default) tunes through-plane models on a GPU with ECLARE's budget
    (capped at GPU_SECONDS_CAP s) and skips it on the CPU, where it takes minutes per volume; 'off' never tunes;
    a number is a time budget in seconds anywhere."""
    if option == "off":
        return None
    if option == "auto":
        if through_plane and upscaler.device.type == "cuda" and upscaler.spec.descriptor.through_plane:
            return Budget(GPU_SECONDS_CAP, ECLARE_PATCHES)
        return None
    seconds = float(option)
    return Budget(seconds, None) if seconds > 0 else None


def tuned(upscaler: Upscaler, volume: Volume, plan: Plan) -> tuple[Upscaler, dict]:
    """An engine whose model was fine-tuned on `volume` for `plan.tuning`, and the tuning's log."""
    from medical.model_choice import with_spec
    from medical.self_supervised import fine_tune

    budget = plan.tuning
    assert budget is not None, "tuned() is for a plan with a tuning budget"
    # A through-plane model learns this acquisition; an x r model (in-plane or through-plane) learns x r.
    learns_acquisition = plan.through_plane and upscaler.spec.descriptor.through_plane
    spec, log = fine_tune(
        upscaler.spec,
        volume,
        axis=plan.axis,
        seconds=budget.seconds,
        max_patches=budget.patches,
        acquisition=plan.acquisition() if learns_acquisition else None,
        target=plan.target_spacing if learns_acquisition else None,
        device=upscaler.device,
    )
    return with_spec(upscaler, spec), log
