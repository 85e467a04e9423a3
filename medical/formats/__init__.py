"""The volume formats `srmed` and the demo read and write, registered in one place.

A format is one small object (see `VolumeFormat`): a *file* format holds one volume in one file (NIfTI); a
*series* format is a DICOM series found in a folder, recognised by its first file. `for_file`, `claiming` and
`for_series` pick the reader, `writer` the writer that `--format` names. Adding a format: a module beside these
that defines one such object, and its name in `FORMATS` below. Format modules import their libraries (nibabel,
pydicom: an optional extra) where they use them, so that `srmed --help` and the registry load without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from medical.formats.dicom_series import DICOM_SERIES
from medical.formats.enhanced import ENHANCED_DICOM
from medical.formats.nifti import NIFTI
from medical.volume import VolumeError

if TYPE_CHECKING:
    from medical.dicom_read import Series
    from medical.volume import Volume


class VolumeSource(Protocol):
    """The volumes one input holds (a 4-D NIfTI or a DICOM time series holds several), read one at a time."""

    count: int

    def read(self, index: int) -> Volume:
        """Volume `index`, 0 <= index < count."""


class OneVolume:
    """A source that holds one volume already read (for formats without time series)."""

    count = 1

    def __init__(self, volume: Volume) -> None:
        self.volume = volume

    def read(self, index: int) -> Volume:
        """The volume (index 0)."""
        if index != 0:
            raise VolumeError(f"{self.volume.source}: volume {index} does not exist (it holds one)")
        return self.volume


class VolumeFormat(Protocol):
    """What the registry asks of a format; `stem` only of file formats, `write` and `suffix` only where
    `writable`."""

    name: str  # as --format names it, and as the reports call it
    kind: Literal["file", "series"]
    writes_as: str  # the format `--format same` writes its volumes in
    writable: bool
    suffix: str  # appended to the output name: ".nii.gz" for a file, "" for a folder

    def detect(self, path: Path) -> bool:
        """Whether the file at `path` is this format's (for a series format: the series' first file)."""

    def stem(self, path: Path) -> str:
        """File formats: the file's name without the format's suffix (what its outputs are called)."""

    def header_shape(self, path: Path) -> tuple[int, ...] | None:
        """The shape as the header alone gives it (to refuse a volume too big before reading it), else None."""

    def open(self, path: Path, series_uid: str | None) -> VolumeSource:
        """The volumes at `path` (a file, or the folder that holds the series `series_uid`): one, or a series'."""

    def write(
        self,
        pairs: Iterable[tuple[Volume, Volume]],
        target: Path,
        description: str,
        slice_thickness: float | None,
        count: int | None,
    ) -> int:
        """Each (upscaled, source) volume at `target`, as one volume (`count` None) or a series of `count`, taken
        from `pairs` one at a time; returns how many voxels were clipped to the stored type."""


# Order matters: the first format that detects a file reads it (enhanced objects before classic slices).
FORMATS: tuple[VolumeFormat, ...] = (NIFTI, ENHANCED_DICOM, DICOM_SERIES)


def by_name(name: str) -> VolumeFormat:
    """The registered format called `name`."""
    return next(f for f in FORMATS if f.name == name)


def claiming(path: Path) -> VolumeFormat | None:
    """The file format that recognises `path`, or None."""
    return next((f for f in FORMATS if f.kind == "file" and f.detect(path)), None)


def for_file(path: Path) -> VolumeFormat:
    """The file format of `path`; a file no format claims goes to the first one, whose reader says what is wrong."""
    return claiming(path) or next(f for f in FORMATS if f.kind == "file")


def for_series(series: Series) -> VolumeFormat:
    """The series format of a DICOM series, recognised by its first file."""
    return next(f for f in FORMATS if f.kind == "series" and f.detect(series.files[0]))


def output_names() -> tuple[str, ...]:
    """The formats volumes can be written in: `--format`'s choices besides 'same'."""
    return tuple(f.name for f in FORMATS if f.writable)


def writer(name: str, read_as: VolumeFormat) -> VolumeFormat:
    """The format that writes a volume read as `read_as` when `--format` says `name` ('same' included)."""
    chosen = by_name(read_as.writes_as if name == "same" else name)
    if not chosen.writable:
        raise VolumeError(f"{name}: volumes cannot be written in this format")
    return chosen
