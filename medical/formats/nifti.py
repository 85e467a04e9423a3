"""NIfTI (.nii, .nii.gz): one volume per file, read and written (`medical.nifti_io`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from medical.volume import Volume


class Nifti:
    """NIfTI-1 files, recognised by name."""

    kind: Literal["file", "series"]  # as VolumeFormat declares it
    name, kind, writes_as, writable, suffix = "nifti", "file", "nifti", True, ".nii.gz"

    def detect(self, path: Path) -> bool:
        """.nii or .nii.gz by name."""
        from medical.nifti_io import is_nifti

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
            img = nib.load(path)
        except (OSError, ImageFileError):
            return None
        return img.shape if isinstance(img, nib.Nifti1Image) else None  # NIfTI-2 included, as the reader

    def open(self, path: Path, series_uid: str | None):
        """The volume in the file, or a 4-D file's volumes."""
        from medical.nifti_io import NiftiVolumes

        return NiftiVolumes(path)

    def write(
        self,
        pairs: Iterable[tuple[Volume, Volume]],
        target: Path,
        description: str,
        slice_thickness: float | None,
        count: int | None,
    ) -> int:
        """The volumes as one .nii.gz at `target` (4-D for a series), stored like their source."""
        from medical.nifti_io import write_nifti_series

        return write_nifti_series((volume for volume, _ in pairs), target, description, count)


NIFTI = Nifti()
