"""What `srmed` will do to one volume, worked out from the request, the volume and the model before any work.

Which way: `--through-plane` / `--in-plane` force it, a thick-slice or an in-plane model given with `-m` implies
it, and otherwise the voxels decide: slices more than THICK times coarser than the in-plane spacing (by their
spacing or their thickness) are refined through-plane to about the in-plane spacing; near-isotropic volumes are
upscaled in-plane. Every volume of a time series gets the plan of its first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from medical.tuning import Budget, self_supervised_budget
from medical.volume import Volume, VolumeError

if TYPE_CHECKING:
    from medical.job import VolumeJob
    from medical.model_choice import Engines
    from srstream.engine import Upscaler
    from training.acquisition import Acquisition

THICK = 1.5  # slices coarser than this many in-plane spacings are thick: refined through-plane by default
IN_PLANE_SCALE = 2.0  # the in-plane default
MIN_RATIO = 1.05  # overlapping thick slices already as dense as in-plane: nothing to add through-plane
MIN_SLICES = 3  # fewer are a few images, not a slice axis to refine
THROUGH_PLANE_FALLBACK = 4.0  # a forced through-plane run on slices that are not thick: x4, as before


@dataclass(frozen=True)
class SliceAxis:
    """Through-plane: the slice axis as acquired and as asked for (mm), and the slice profile with its evidence."""

    spacing_mm: float
    thickness_mm: float
    thickness_from: str  # --slice-thickness, SliceThickness, or the spacing for want of either
    target_spacing_mm: float
    ratio: float
    profile: str
    profile_evidence: dict[str, Any]

    def report(self) -> dict[str, Any]:
        """The report's `slice_axis` entry: these fields, under these names."""
        return asdict(self)


@dataclass(frozen=True)
class Direction:
    """Which way a volume is upscaled, along which slice axis, and why (for the log line and the report)."""

    through_plane: bool
    axis: int
    reason: str


@dataclass(frozen=True)
class Plan:
    """One volume's job: the model, which axis, how much, the slice axis (through-plane only), any tuning, the
    output format, and why this way."""

    model: str
    axis: int
    scale: float  # in-plane: the model's factor; through-plane: the slice axis's ratio
    slice_axis: SliceAxis | None
    tuning: Budget | None
    output_format: str
    reason: str = ""

    @property
    def through_plane(self) -> bool:
        return self.slice_axis is not None

    @property
    def mode(self) -> str:
        return "through-plane" if self.through_plane else "in-plane"

    @property
    def factors(self) -> tuple[float, float, float]:
        """How much each voxel axis grows."""
        return axis_factors(self.axis, self.scale, self.through_plane)

    @property
    def target_spacing(self) -> float | None:
        """Through-plane: the slice axis's new spacing (mm); None in-plane."""
        return self.slice_axis.target_spacing_mm if self.slice_axis else None

    def acquisition(self) -> Acquisition:
        """Through-plane: the acquisition a through-plane model learns to undo when it tunes on the volume."""
        from training.acquisition import Acquisition

        slices = self.slice_axis
        assert slices is not None, "an in-plane plan has no acquisition to learn"
        return Acquisition(slices.spacing_mm, slices.thickness_mm, slices.profile)

    def describe(self, model: str | None = None) -> str:
        """One line for the output's description (NIfTI descrip, DICOM SeriesDescription)."""
        if self.slice_axis:
            what = f"through-plane {self.slice_axis.spacing_mm:g} -> {self.slice_axis.target_spacing_mm:g} mm"
        else:
            what = f"in-plane x{self.scale:g}"
        return f"srstream {model or self.model} {what} axis {self.axis}"


def axis_factors(axis: int, scale: float, through_plane: bool) -> tuple[float, float, float]:
    """Through-plane: only `axis` grows by `scale`; in-plane: the two others do."""
    i, j, k = ((scale if a == axis else 1) if through_plane else (1 if a == axis else scale) for a in range(3))
    return i, j, k


def _thickness(volume: Volume, axis: int, job: VolumeJob) -> tuple[float, str]:
    # SliceThickness describes the DICOM slice axis, which the reader puts last; other axes have none.
    recorded = volume.meta.get("slice_thickness") if axis == 2 else None
    if job.slice_thickness:
        return job.slice_thickness, "--slice-thickness"
    if recorded:
        return float(recorded), "SliceThickness"
    return volume.spacing[axis], "the slice spacing (no thickness recorded for this axis)"


def coarseness(volume: Volume, axis: int, job: VolumeJob) -> float:
    """How coarse the slices along `axis` are (mm): the larger of their spacing and their thickness."""
    return max(volume.spacing[axis], _thickness(volume, axis, job)[0])


def in_plane_spacing(volume: Volume, axis: int) -> float:
    """The coarser of the two in-plane spacings (mm): what the default through-plane target refines to."""
    return max(s for a, s in enumerate(volume.spacing) if a != axis)


def thick(volume: Volume, axis: int, job: VolumeJob) -> bool:
    """Whether the slices along `axis` are thick (over THICK in-plane spacings) and sparse enough to refine."""
    fine = in_plane_spacing(volume, axis)
    if volume.shape[axis] < MIN_SLICES:
        return False
    return coarseness(volume, axis, job) > THICK * fine and volume.spacing[axis] > MIN_RATIO * fine


def direction(volume: Volume, job: VolumeJob, model_through_plane: bool | None) -> Direction:
    """Which way `volume` goes: forced by the options, implied by a model the user named, else by its voxels."""
    axis = job.axis
    if axis is None:  # the thickest axis where one stands out, else DICOM's slice axis
        by_axis = [coarseness(volume, a, job) for a in range(3)]
        thickest = max(range(3), key=lambda a: (by_axis[a], a == 2))
        axis = thickest if thick(volume, thickest, job) else 2
    if job.mode != "auto":
        return Direction(job.mode == "through-plane", axis, f"--{job.mode}")
    if model_through_plane is not None:
        return Direction(
            model_through_plane,
            axis,
            f"model {job.model} is " + ("a thick-slice model" if model_through_plane else "an in-plane model"),
        )
    coarse, fine = coarseness(volume, axis, job), in_plane_spacing(volume, axis)
    if thick(volume, axis, job):
        return Direction(
            True,
            axis,
            f"slices {coarse:.3g} mm along axis {axis} are {coarse / fine:.2g}x the "
            f"in-plane {fine:.3g} mm (over {THICK:g}x): through-plane; --in-plane for the other way",
        )
    return Direction(
        False,
        axis,
        f"slices {coarse:.3g} mm along axis {axis} are {coarse / fine:.2g}x the in-plane "
        f"{fine:.3g} mm (not over {THICK:g}x): in-plane; --through-plane for the other way",
    )


def slice_axis_of(volume: Volume, job: VolumeJob, axis: int, upscaler: Upscaler) -> SliceAxis:
    """The slice axis as acquired and as asked for: spacing and thickness (mm), target spacing, slice profile."""
    from medical.profile import choose_profile

    spacing = volume.spacing[axis]
    thickness, source = _thickness(volume, axis, job)
    own = upscaler.spec.descriptor.through_plane_factor
    if job.spacing:
        target = job.spacing
    elif job.scale is not None:
        target = spacing / job.scale
    elif own:
        target = spacing / own
    elif thick(volume, axis, job):
        target = in_plane_spacing(volume, axis)  # near-isotropic
    else:
        target = spacing / THROUGH_PLANE_FALLBACK
    profile, evidence = choose_profile(volume, axis, spacing, thickness, job.profile)
    return SliceAxis(
        round(spacing, 6),
        round(float(thickness), 6),
        source,
        round(target, 6),
        round(spacing / target, 6),
        profile,
        evidence,
    )


def make_plan(volume: Volume, job: VolumeJob, engines: Engines, output_format: str) -> tuple[Plan, Upscaler]:
    """The plan for `volume` under `job`, written as `output_format`, and the engine that carries it out."""
    from medical.model_choice import check_model, default_model

    named = engines.get(job.model) if job.model else None
    way = direction(volume, job, named.spec.descriptor.through_plane if named else None)
    scale = job.scale if job.scale is not None else named.scale if named and not way.through_plane else IN_PLANE_SCALE
    upscaler = named or engines.get(default_model(scale, way.through_plane, volume.meta.get("modality")))
    check_model(upscaler, way.through_plane, scale)
    slice_axis = slice_axis_of(volume, job, way.axis, upscaler) if way.through_plane else None
    plan = Plan(
        model=upscaler.spec.descriptor.name,
        axis=way.axis,
        scale=slice_axis.ratio if slice_axis else upscaler.scale,
        slice_axis=slice_axis,
        tuning=self_supervised_budget(job.self_supervised, upscaler, way.through_plane),
        output_format=output_format,
        reason=way.reason,
    )
    if slice_axis and slice_axis.ratio <= 1 + 1e-6:
        raise VolumeError(
            f"{volume.source}: target spacing {slice_axis.target_spacing_mm:g} mm is not finer than "
            f"the slices' {slice_axis.spacing_mm:g} mm along axis {way.axis}"
        )
    return plan, upscaler
