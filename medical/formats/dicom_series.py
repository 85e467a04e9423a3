"""Classic DICOM series (one slice per file, Siemens mosaics included): read, and written as a derived series."""
from __future__ import annotations

from pathlib import Path

from medical.volume import Volume


def series_in(folder: Path, series_uid: str | None):
    """The series `series_uid` among those in `folder` (the first one for None)."""
    from medical.dicom_read import find_series

    found = find_series(folder)
    return next(s for s in found if s.uid == series_uid) if series_uid else found[0]


class DicomSeries:
    """Classic single-frame images, one file per slice (or per Siemens mosaic)."""

    name, kind, writes_as, writable, suffix = "dicom", "series", "dicom", True, ""

    def detect(self, path: Path) -> bool:
        """Any DICOM image file: the series formats before this one have had their say."""
        return True

    def header_shape(self, path: Path) -> tuple[int, ...] | None:
        """None: a series' size is known only once its files are read."""
        return None

    def read(self, path: Path, series_uid: str | None, volume_index: int | None) -> Volume:
        """The series `series_uid` in the folder `path` (one of a time series' volumes by `volume_index`)."""
        from medical.dicom_read import read_series

        return read_series(series_in(path, series_uid), volume_index)

    def write(self, volume: Volume, source: Volume, target: Path, description: str,
              slice_thickness: float | None) -> int:
        """`volume` as a new derived series of files in the folder `target`, headers copied from `source`."""
        from medical.dicom_write import write_dicom_series

        return write_dicom_series(volume, source, target, description, slice_thickness=slice_thickness)


DICOM_SERIES = DicomSeries()
