"""What to do to each volume: one typed request (`VolumeJob`) that every medical front door builds once (the CLI
from argparse, the node and the BIDS app from it, the demo from its widgets) and that holds each default once."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields, replace
from pathlib import Path

from medical.volume import VolumeError

MODES = ("auto", "in-plane", "through-plane")


@dataclass(frozen=True, kw_only=True)
class VolumeJob:
    """The options of one run over volumes; the front doors copy it with `replace` rather than mutate it."""

    output: Path = Path(".")
    mode: str = "auto"  # auto: through-plane where the slices are thick (medical.plan.THICK), else in-plane
    model: str | None = None  # None: chosen per volume by its plan (medical.model_choice.default_model)
    scale: float | None = None  # None: x2 in-plane; through-plane, the target spacing decides
    spacing: float | None = None  # through-plane target (mm)
    slice_thickness: float | None = None
    profile: str = "auto"
    axis: int | None = None  # None: the thick axis where one is, else 2 (DICOM's slice axis)
    format: str = "same"
    volume: int | None = None  # one volume of a 4-D input; None: all of them
    self_supervised: str = "auto"
    backend: str = "auto"
    precision: str = "auto"
    batch: int = 8
    tta: bool = False
    preview: bool = False
    overwrite: bool = False
    ray: str | None = None
    quiet: bool = False

    def __post_init__(self) -> None:
        _check(self)

    @property
    def scale_given(self) -> bool:
        return self.scale is not None

    def with_(self, **changes) -> VolumeJob:
        """A copy with `changes` (checked again)."""
        return replace(self, **changes)


def _check(job: VolumeJob) -> None:
    if job.mode not in MODES:
        raise VolumeError(f"mode {job.mode!r}: one of {', '.join(MODES)}")
    if job.spacing is not None and job.mode == "in-plane":
        raise VolumeError("--spacing sets the slice axis's target: it cannot go with --in-plane")
    if job.spacing is not None and job.scale is not None:
        raise VolumeError("--spacing and --scale both set the target: give one")
    if job.self_supervised not in ("auto", "off"):
        try:
            seconds = float(job.self_supervised)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds >= 0):
            raise VolumeError(f"--self-supervised {job.self_supervised!r}: SECONDS, auto or off")
    for name in ("spacing", "slice_thickness", "scale"):
        value = getattr(job, name)
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise VolumeError(f"--{name.replace('_', '-')} {value:g}: must be a positive number")
    if job.mode == "in-plane" and job.scale is not None and job.scale != int(job.scale):
        raise VolumeError(f"in-plane --scale {job.scale:g}: the models are x2 and x4")
    if job.batch < 1:
        raise VolumeError(f"--batch {job.batch}: must be at least 1")


def job_from_args(args: argparse.Namespace, **changes) -> VolumeJob:
    """The request that `srmed upscale`'s options (on any subcommand that takes them) describe, with `changes`."""
    if getattr(args, "through_plane", False) and getattr(args, "in_plane", False):
        raise VolumeError("--through-plane and --in-plane contradict each other: give one")
    mode = "through-plane" if args.through_plane else "in-plane" if args.in_plane else "auto"
    if args.spacing is not None and mode == "auto":
        mode = "through-plane"  # a target spacing along the slices says which way
    names = {f.name for f in fields(VolumeJob)} - {"output", "mode"}
    given = {name: getattr(args, name) for name in names if hasattr(args, name)}
    output = Path(getattr(args, "output", None) or ".")
    return VolumeJob(**{"output": output, "mode": mode, **given, **changes})
