"""DICOM out: an upscaled volume as a new derived series beside its source (classic single-frame images).

Every slice is a copy of a source slice's header (patient, study, equipment, acquisition kept) with what the
upscaling changed rewritten: new Series/SOP Instance UIDs, Rows/Columns, PixelSpacing, SliceThickness,
SpacingBetweenSlices, ImagePositionPatient, ImageType DERIVED\\SECONDARY, DerivationDescription, references to the
source images and series, and uncompressed Explicit VR Little Endian pixel data stored like the source
(RescaleSlope/Intercept kept).
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medical.intensity import cast_like
from medical.nifti_io import VolumeError
from medical.volume import LPS_TO_RAS, Volume
from training.atomic import current_umask

# Tags that describe the source pixels or their encoding and would be wrong on the new ones.
# Time-series tags (_TIME) go too where the derived series is one volume (dcm2niix would split it by them).
_STALE = (
    "PixelData",
    "FloatPixelData",
    "DoubleFloatPixelData",
    "LargestImagePixelValue",
    "SmallestImagePixelValue",
    "PerFrameFunctionalGroupsSequence",
    "SharedFunctionalGroupsSequence",
    "NumberOfFrames",
    "SliceLocation",
    "ImageComments",
    "IconImageSequence",
    "ImagesInAcquisition",
)
_TIME = ("NumberOfTemporalPositions", "TemporalPositionIdentifier", "TemporalResolution", "TriggerTime")


def _source_slices(volume: Volume) -> list[Dataset]:
    files = volume.meta.get("files")
    if volume.meta.get("format") != "dicom" or not files:
        raise VolumeError(f"{volume.source}: DICOM output needs a DICOM source series (use NIfTI output)")
    headers: list[Dataset] = [pydicom.dcmread(f, stop_before_pixels=True, force=True) for f in files]
    if "PerFrameFunctionalGroupsSequence" in headers[0]:
        # Its per-frame functional groups do not map onto classic MR/CT images without inventing Type 1 values.
        raise VolumeError(
            f"{volume.source}: DICOM output from an enhanced multi-frame source is not supported (use --format nifti)"
        )
    return headers  # a Siemens mosaic lists its one file once per slice: each slice copies that classic header


@contextmanager
def _atomic_folder(out_dir: Path) -> Iterator[Path]:
    """A hidden folder beside `out_dir` to fill, renamed to `out_dir` at the end (removed on any failure)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700; the series is for others to read too
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _place(ds: Dataset, lps: np.ndarray, k: int, n_j: int) -> None:
    """Slice k's position, orientation, pixel spacing and location, from the volume's LPS affine."""
    col_step, row_step, slice_step = lps[:3, 0], -lps[:3, 1], lps[:3, 2]  # along a row, down a column, between
    col_spacing, row_spacing = float(np.linalg.norm(col_step)), float(np.linalg.norm(row_step))
    row_cos, col_cos = col_step / col_spacing, row_step / row_spacing
    first_voxel = lps @ np.array([0, n_j - 1, k, 1.0])  # top-left pixel: i = 0, j flipped back
    ds.ImagePositionPatient = [f"{v:.6f}" for v in first_voxel[:3]]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row_cos, *col_cos)]
    ds.PixelSpacing = [f"{row_spacing:.6f}", f"{col_spacing:.6f}"]
    ds.SpacingBetweenSlices = f"{float(np.linalg.norm(slice_step)):.6f}"
    ds.SliceLocation = f"{float(first_voxel[:3] @ np.cross(row_cos, col_cos)):.6f}"
    ds.InstanceNumber = k + 1


def write_dicom_series(
    volume: Volume, source: Volume, out_dir: str | Path, description: str, slice_thickness: float | None = None
) -> int:
    """Write `volume` (the upscaled `source`) as a new series of files IM0001.dcm... in `out_dir`, atomically
    (a hidden folder renamed at the end). `slice_thickness` (mm) is the new slices' nominal thickness (default:
    the source's, divided by how much the slice axis was refined). Returns the number of voxels clipped to fit the
    stored type."""
    return write_dicom_volumes([(volume, source)], out_dir, description, slice_thickness, None)


def write_dicom_volumes(
    pairs: Iterable[tuple[Volume, Volume]],
    out_dir: str | Path,
    description: str,
    slice_thickness: float | None = None,
    count: int | None = None,
) -> int:
    """Each (upscaled, source) volume of a time series into one derived series, volume after volume (`count` of
    them; None: a single volume, whose time-series tags are dropped). Every instance copies its own source
    slice's header, so acquisition times, temporal positions and diffusion tags stay with their volume.
    Atomic; returns the number of voxels clipped to fit the stored type."""
    series_uid, clipped, written = generate_uid(), 0, 0
    with _atomic_folder(Path(out_dir)) as tmp:
        for volume, source in pairs:
            clipped += _write_volume(
                volume,
                source,
                tmp,
                series_uid,
                description,
                slice_thickness,
                first_instance=written + 1,
                series=count is not None,
            )
            written += volume.shape[2]
        if not written:
            raise VolumeError(f"{out_dir}: no volumes to write")
    return clipped


def _write_volume(
    volume: Volume,
    source: Volume,
    folder: Path,
    series_uid: str,
    description: str,
    slice_thickness: float | None,
    first_instance: int,
    series: bool,
) -> int:
    """One volume's slices as instances first_instance, first_instance + 1, ... of the series in `folder`."""
    sources = _source_slices(source)
    lps = np.linalg.inv(LPS_TO_RAS) @ volume.affine
    slice_gap = float(np.linalg.norm(lps[:3, 2]))
    _, n_j, n_k = volume.shape
    factor_k = n_k / source.shape[2]
    ref0 = sources[0]
    slope = float(ref0.get("RescaleSlope", 1) or 1)
    inter = float(ref0.get("RescaleIntercept", 0) or 0)
    signed = int(ref0.get("PixelRepresentation", 1)) == 1
    stored, clipped = cast_like((volume.data - inter) / slope, np.dtype(np.int16 if signed else np.uint16))
    # Which source slice each new one lies in (any ratio): its centre in the source's slice index.
    to_source = np.linalg.inv(source.affine) @ volume.affine
    for k in range(n_k):
        index = int(np.clip(np.floor((to_source @ np.array([0, 0, k, 1.0]))[2] + 0.5), 0, len(sources) - 1))
        src = sources[index]
        ds = _derived(src, series_uid, description, keep_time=series)
        _place(ds, lps, k, n_j)
        ds.InstanceNumber = first_instance + k
        source_thickness = float(src.get("SliceThickness") or 0)
        thickness = slice_thickness or (source_thickness / factor_k if source_thickness else slice_gap)
        ds.SliceThickness = f"{thickness:.6f}"
        pixels = np.ascontiguousarray(stored[:, ::-1, k].T)  # (rows, cols) from (i, j flipped)
        ds.set_pixel_data(pixels, "MONOCHROME2", 16, generate_instance_uid=False)
        ds.save_as(folder / f"IM{first_instance + k:04d}.dcm", enforce_file_format=True)
    return clipped


def _derived(src: Dataset, series_uid: str, description: str, keep_time: bool) -> Dataset:
    ds = copy.deepcopy(src)
    ds.remove_private_tags()  # vendor tags describe the source acquisition's slices, not these
    for keyword in _STALE if keep_time else (*_STALE, *_TIME):
        if keyword in ds:
            delattr(ds, keyword)
    sop_uid = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = src.SOPClassUID
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.SOPInstanceUID = sop_uid
    # Laterality is Type 2C (only for paired body parts): an empty one copied from the source breaks the IOD.
    if "Laterality" in ds and not str(ds.Laterality or "").strip():
        del ds.Laterality
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = int(src.get("SeriesNumber", 0) or 0) + 1000
    ds.SeriesDescription = f"{src.get('SeriesDescription', '')} {description}".strip()[:64]
    image_type = list(src.get("ImageType", ["ORIGINAL", "PRIMARY"]))
    ds.ImageType = ["DERIVED", "SECONDARY", *(v for v in image_type[2:] if str(v).upper() != "MOSAIC")]
    ds.DerivationDescription = description[:1024]
    ref = Dataset()
    ref.ReferencedSOPClassUID = src.SOPClassUID
    ref.ReferencedSOPInstanceUID = src.SOPInstanceUID
    ds.SourceImageSequence = Sequence([ref])
    series_ref = Dataset()
    series_ref.SeriesInstanceUID = src.SeriesInstanceUID
    series_ref.ReferencedInstanceSequence = Sequence([copy.deepcopy(ref)])
    ds.ReferencedSeriesSequence = Sequence([series_ref])
    return ds
