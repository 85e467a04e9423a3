"""What `srmed` will do to one volume, worked out from the options, the volume and the model before any work."""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from medical.tuning import Budget, self_supervised_budget
from medical.volume import Volume

if TYPE_CHECKING:
    from srstream.engine import Upscaler
    from training.acquisition import Acquisition


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
class Plan:
    """One volume's job: which axis, how much, the slice axis (through-plane only), any tuning, the output format."""

    axis: int
    scale: float  # in-plane: the model's factor; through-plane: the slice axis's ratio
    slice_axis: SliceAxis | None
    tuning: Budget | None
    output_format: str

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

        return Acquisition(self.slice_axis.spacing_mm, self.slice_axis.thickness_mm, self.slice_axis.profile)

    def describe(self, model: str) -> str:
        """One line for the output's description (NIfTI descrip, DICOM SeriesDescription)."""
        if self.slice_axis:
            what = f"through-plane {self.slice_axis.spacing_mm:g} -> {self.slice_axis.target_spacing_mm:g} mm"
        else:
            what = f"in-plane x{self.scale:g}"
        return f"srstream {model} {what} axis {self.axis}"


def axis_factors(axis: int, scale: float, through_plane: bool) -> tuple[float, float, float]:
    """Through-plane: only `axis` grows by `scale`; in-plane: the two others do."""
    return tuple((scale if a == axis else 1) if through_plane else (1 if a == axis else scale) for a in range(3))


def slice_axis_of(volume: Volume, args: argparse.Namespace, upscaler: Upscaler) -> SliceAxis:
    """The slice axis as acquired and as asked for: spacing and thickness (mm), target spacing, slice profile."""
    from medical.profile import choose_profile

    spacing = volume.spacing[args.axis]
    # SliceThickness describes the DICOM slice axis, which the reader puts last; other axes have none.
    recorded = volume.meta.get("slice_thickness") if args.axis == 2 else None
    thickness = args.slice_thickness or recorded or spacing
    source = "--slice-thickness" if args.slice_thickness else "SliceThickness" if recorded else \
        "the slice spacing (no thickness recorded for this axis)"
    if args.spacing:
        target = args.spacing
    else:
        own = upscaler.spec.descriptor.through_plane_factor
        target = spacing / (args.scale if args.scale_given or not own else own)
    profile, evidence = choose_profile(volume, args.axis, spacing, thickness, args.profile)
    return SliceAxis(round(spacing, 6), round(float(thickness), 6), source, round(target, 6),
                     round(spacing / target, 6), profile, evidence)


def make_plan(volume: Volume, args: argparse.Namespace, upscaler: Upscaler, output_format: str) -> Plan:
    """The plan for `volume` under `args` with `upscaler`'s model, written as `output_format`."""
    slice_axis = slice_axis_of(volume, args, upscaler) if args.through_plane else None
    return Plan(axis=args.axis, scale=slice_axis.ratio if slice_axis else upscaler.scale, slice_axis=slice_axis,
                tuning=self_supervised_budget(args.self_supervised, upscaler, args.through_plane),
                output_format=output_format)
