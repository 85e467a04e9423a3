"""Which models and backend `srmed` runs: the default model, the engines a run needs (one per model, built when
first asked for), and checks of a model against the way a volume is upscaled."""

from __future__ import annotations

from typing import TYPE_CHECKING

from medical.volume import VolumeError

if TYPE_CHECKING:
    from medical.job import VolumeJob
    from srstream.engine import Upscaler
    from srstream.models import ModelSpec


def default_model(scale: float, through_plane: bool, modality: str | None = None) -> str:
    """Through-plane: `ct-thick` for CT, else `mri-thick` (any ratio) where shipped, else mri-thick-xN; in-plane:
    mri-xN."""
    from training.weights import shipped_models

    models = shipped_models()
    if through_plane and modality == "CT" and "ct-thick" in models:
        return "ct-thick"  # fine-tuned on CT: +0.24 / +0.44 dB over mri-thick on the held-out head CT
    if through_plane:
        if "mri-thick" in models:
            return "mri-thick"
        if f"mri-thick-x{scale:g}" in models:
            return f"mri-thick-x{scale:g}"
    return f"mri-x{scale:g}"


class Engines:
    """The engines of one run, by model: a run may mix thick-slice and near-isotropic volumes, each loaded once."""

    def __init__(self, job: VolumeJob, built: dict[str, Upscaler] | None = None) -> None:
        self.job = job
        self._built = {} if built is None else built  # a page serving many runs keeps its engines between them

    def get(self, model: str) -> Upscaler:
        """The engine for `model` on the job's backend, with its batch, TTA and precision; built once."""
        from srstream.engine import Upscaler

        if model not in self._built:
            job = self.job
            self._built[model] = Upscaler(
                model, backend=job.backend, batch_size=job.batch, tta=job.tta, precision=job.precision
            )
        return self._built[model]

    def describe(self) -> str:
        """The models this run uses, for a log line."""
        if self.job.model:
            up = self.get(self.job.model)
            return f"model {up.spec.descriptor.name} on {up.backend_name}"
        return (
            f"model by the voxels: {default_model(self.job.scale or 2.0, False)} in-plane, "
            f"{default_model(self.job.scale or 4.0, True)} for thick slices "
            f"({default_model(self.job.scale or 4.0, True, 'CT')} for CT)"
        )


def check_model(upscaler: Upscaler, through_plane: bool, scale: float) -> None:
    """Refuse a model that cannot go the way asked (a thick-slice model in-plane) or another in-plane scale."""
    descriptor = upscaler.spec.descriptor
    if descriptor.through_plane and not through_plane:
        raise VolumeError(f"model {descriptor.name} restores thick slices: use it with --through-plane")
    if not through_plane and upscaler.scale != scale:
        raise VolumeError(f"model {descriptor.name} is x{upscaler.scale}, asked for --scale {scale:g}")


def with_spec(upscaler: Upscaler, spec: ModelSpec) -> Upscaler:
    """An engine like `upscaler` running `spec` (other weights)."""
    from srstream.backends.registry import backend_type
    from srstream.engine import Upscaler

    backend = backend_type(upscaler.backend_name).for_tuned_weights or upscaler.backend_name
    return Upscaler(
        spec, backend=backend, batch_size=upscaler.batch_size, tta=upscaler.tta, precision=upscaler.precision
    )
