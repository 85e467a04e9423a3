"""Classic DICOM series (one slice per file, Siemens mosaics included): read, and written as a derived series."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from medical.volume import Volume


def series_in(folder: Path, series_uid: str | None):
    """The series `series_uid` among those in `folder` (the first one for None)."""
    from medical.dicom_read import find_series

    found = find_series(folder)
    return next(s for s in found if s.uid == series_uid) if series_uid else found[0]


class DicomSeries:
    """Classic single-frame images, one file per slice (or per Siemens mosaic)."""

    kind: Literal["file", "series"]  # as VolumeFormat declares it
    name, kind, writes_as, writable, suffix = "dicom", "series", "dicom", True, ""

    def detect(self, path: Path) -> bool:
        """Any DICOM image file: the series formats before this one have had their say."""
        return True

    def stem(self, path: Path) -> str:
        """Never asked: a series' outputs are named after its folder and description (medical.discover)."""
        raise NotImplementedError(f"{self.name}: a series format names no file")

    def header_shape(self, path: Path) -> tuple[int, ...] | None:
        """None: a series' size is known only once its files are read."""
        return None

    def open(self, path: Path, series_uid: str | None):
        """The series `series_uid` in the folder `path`: its volume, or a time series' volumes."""
        from medical.dicom_read import SeriesVolumes

        return SeriesVolumes(series_in(path, series_uid))

    def write(
        self,
        pairs: Iterable[tuple[Volume, Volume]],
        target: Path,
        description: str,
        slice_thickness: float | None,
        count: int | None,
    ) -> int:
        """The volumes as a new derived series of files in the folder `target`, headers copied from each one's
        source slices."""
        from medical.dicom_write import write_dicom_volumes

        return write_dicom_volumes(pairs, target, description, slice_thickness, count)


DICOM_SERIES = DicomSeries()
