"""A BIDS dataset's anatomical images, selected by entities, each with the JSON sidecars that apply to it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medical.discover import Task
from medical.volume import Volume, VolumeError

if TYPE_CHECKING:
    from bids import BIDSLayout
    from bids.layout import BIDSFile

    from medical.formats import VolumeSource

# Structural images whose voxels are intensities to restore; quantitative maps (T1map, ...) and multi-volume
# suffixes (PDT2, MPM's) need --suffix, since upscaling a map's values is a choice to make knowingly.
DATATYPES = ("anat", "func", "dwi", "perf")  # where --suffix looks: images and their time series
ANAT_SUFFIXES = ("T1w", "T2w", "PDw", "T2starw", "FLAIR", "inplaneT1", "inplaneT2", "angio")


def is_bids_root(path: str | Path) -> bool:
    """Whether `path` is a folder with a dataset_description.json (how BIDS marks a dataset's root)."""
    return (Path(path) / "dataset_description.json").is_file()


def open_dataset(root: str | Path) -> BIDSLayout:
    """The dataset at `root`, indexed by pybids (file names only: sidecars are read per image, see `metadata`)."""
    from bids import BIDSLayout, BIDSLayoutIndexer
    from bids.exceptions import BIDSValidationError

    root = Path(root)
    if not root.is_dir():
        raise VolumeError(f"{root}: no such directory")
    if not is_bids_root(root):
        raise VolumeError(f"{root}: not a BIDS dataset (no dataset_description.json)")
    try:
        # Without metadata indexing one broken sidecar fails its own image, not the whole dataset.
        return BIDSLayout(root, indexer=BIDSLayoutIndexer(index_metadata=False))
    except BIDSValidationError as exc:
        raise VolumeError(f"{root / 'dataset_description.json'}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0]


def _check_labels(layout: BIDSLayout, kind: str, asked: list[str] | None, present: list[str]) -> None:
    missing = sorted(set(asked or ()) - set(present))
    if missing:
        listed = ", ".join(sorted(present)) or "none"
        raise VolumeError(f"{layout.root}: no {kind} {', '.join(missing)} (the dataset has: {listed})")


def _labels(values: list[str] | None, prefix: str) -> list[str] | None:
    # BIDS apps take labels with or without their prefix: 01 and sub-01 alike.
    return [v.removeprefix(prefix) for v in values] if values else None


def select(
    layout: BIDSLayout,
    participants: list[str] | None = None,
    sessions: list[str] | None = None,
    suffixes: list[str] | None = None,
    acquisitions: list[str] | None = None,
    runs: list[int] | None = None,
) -> list[BIDSFile]:
    """The NIfTI anat images matching every given entity (None: any); labels the dataset lacks are an error."""
    participants, sessions = _labels(participants, "sub-"), _labels(sessions, "ses-")
    _check_labels(layout, "participant", participants, layout.get_subjects())
    _check_labels(layout, "session", sessions, layout.get_sessions())
    # Anatomical images by default; a suffix named (bold, dwi, ...) finds its own datatype's time series too.
    filters: dict[str, Any] = {
        "datatype": list(DATATYPES) if suffixes else "anat",
        "extension": [".nii", ".nii.gz"],
        "suffix": list(suffixes or ANAT_SUFFIXES),
    }
    for entity, values in (
        ("subject", participants),
        ("session", sessions),
        ("acquisition", acquisitions),
        ("run", runs),
    ):
        if values:
            filters[entity] = values
    images = layout.get(return_type="object", **filters)
    if not images:
        asked = ", ".join(f"{k}={v}" for k, v in filters.items() if k not in ("datatype", "extension"))
        raise VolumeError(f"{layout.root}: no NIfTI images match the selection ({asked})")
    return sorted(images, key=lambda f: f.path)


def sidecars(layout: BIDSLayout, image: BIDSFile) -> tuple[str, ...]:
    """The JSON sidecars that apply to `image` by BIDS inheritance, nearest first."""
    found = (
        layout.get_nearest(image.path, extension=".json", suffix=image.entities["suffix"], all_=True, strict=True) or []
    )
    return tuple(str(p) for p in found)


def gradient_files(layout: BIDSLayout, image: BIDSFile) -> tuple[str, ...]:
    """The `.bval` and `.bvec` that apply to a dwi `image` by BIDS inheritance (nearest first); () otherwise."""
    if image.entities.get("suffix") != "dwi":
        return ()
    found = (layout.get_nearest(image.path, extension=ext, suffix="dwi", strict=True) for ext in (".bval", ".bvec"))
    return tuple(str(p) for p in found if p)


def metadata(sidecar_paths: tuple[str, ...]) -> dict[str, Any]:
    """The image's metadata: its sidecars merged, nearer ones overriding (BIDS inheritance)."""
    merged: dict[str, Any] = {}
    for path in reversed(sidecar_paths):
        merged.update(read_json_object(Path(path)))
    return merged


def read_json_object(path: Path) -> dict[str, Any]:
    """A BIDS JSON file (a sidecar, a dataset description), which must hold one object; else a one-line error."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise VolumeError(f"{path}: not valid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VolumeError(f"{path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if not isinstance(data, dict):
        raise VolumeError(f"{path}: must be a JSON object, not {type(data).__name__}")
    return data


def slice_thickness(meta: dict[str, Any], sidecar_paths: tuple[str, ...]) -> float | None:
    """SliceThickness (mm) from the metadata, checked; None where no sidecar gives it."""
    value = meta.get("SliceThickness")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise VolumeError(
            f"{_origin('SliceThickness', sidecar_paths)}: SliceThickness {value!r} is not a positive number of mm"
        )
    return float(value)


def _origin(key: str, sidecar_paths: tuple[str, ...]) -> str:
    """The nearest sidecar that sets `key` (all of them parsed already by `metadata`)."""
    return next(p for p in sidecar_paths if key in json.loads(Path(p).read_text()))


@dataclass(frozen=True)
class BidsTask(Task):
    """A `Task` for one BIDS image: read as NIfTI, with its sidecars' SliceThickness, which NIfTI cannot hold."""

    sidecars: tuple[str, ...] = ()
    gradient_files: tuple[str, ...] = ()  # the .bval/.bvec that apply to a dwi image by inheritance

    def gradients(self) -> tuple[str, ...]:
        """The diffusion gradients BIDS gives this image."""
        return self.gradient_files

    def open(self) -> _WithThickness:
        """Its volumes, each with the slice axis's thickness taken from SliceThickness (what the plan uses)."""
        return _WithThickness(super().open(), slice_thickness(metadata(self.sidecars), self.sidecars))


class _WithThickness:
    """A NIfTI's volumes with the SliceThickness its sidecars give (None: as read)."""

    def __init__(self, source: VolumeSource, thickness: float | None) -> None:
        self.source, self.thickness, self.count = source, thickness, source.count

    def read(self, index: int) -> Volume:
        volume = self.source.read(index)
        if self.thickness is not None:
            volume.meta["slice_thickness"] = self.thickness
        return volume
