"""NIfTI (.nii, .nii.gz): one volume per file, read and written (`medical.nifti`)."""
from __future__ import annotations

import re
from pathlib import Path

from medical.volume import Volume


class Nifti:
    """NIfTI-1 files, recognised by name."""

    name, kind, writes_as, writable, suffix = "nifti", "file", "nifti", True, ".nii.gz"

    def detect(self, path: Path) -> bool:
        """.nii or .nii.gz by name."""
        from medical.nifti import is_nifti

        return is_nifti(path)

    def stem(self, path: Path) -> str:
        """The name without .nii or .nii.gz."""
        return re.sub(r"\.nii(\.gz)?$", "", path.name)

    def header_shape(self, path: Path) -> tuple[int, ...] | None:
        """The header's shape; None for a file nibabel cannot open (its reader then says why)."""
        import nibabel as nib
        from nibabel.filebasedimages import ImageFileError

        if not self.detect(path):
            return None  # a file no format claimed: not worth a guess
        try:
            return nib.load(path).shape
        except (OSError, ImageFileError):
            return None

    def read(self, path: Path, series_uid: str | None, volume_index: int | None) -> Volume:
        """The 3-D volume in the file (one of a 4-D file's by `volume_index`)."""
        from medical.nifti import read_nifti

        return read_nifti(path, volume_index)

    def write(self, volume: Volume, source: Volume, target: Path, description: str,
              slice_thickness: float | None) -> int:
        """`volume` as a .nii.gz at `target`, stored like its source."""
        from medical.nifti import write_nifti

        return write_nifti(volume, target, description)


NIFTI = Nifti()
