"""Enhanced multi-frame DICOM (a whole series in one file): read; written back as a classic series, which the
DICOM writer refuses for now (its per-frame groups do not map onto classic headers without inventing values)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from medical.formats.dicom_series import DicomSeries


class EnhancedDicom(DicomSeries):
    """One file with PerFrameFunctionalGroupsSequence, every frame a slice: found and read as a series is (the
    series reader tells the frames from the files), never written in this form."""

    kind: Literal["file", "series"]  # as VolumeFormat declares it
    name, kind, writes_as, writable, suffix = "dicom-enhanced", "series", "dicom", False, ""

    def detect(self, path: Path) -> bool:
        """Whether the file's header has per-frame functional groups."""
        from medical.dicom_read import is_enhanced

        return is_enhanced(path)


ENHANCED_DICOM = EnhancedDicom()
