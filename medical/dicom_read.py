"""DICOM series in: a folder searched recursively, split by SeriesInstanceUID, slices ordered by their position
along the slice normal, rescale applied, time series split into volumes, enhanced multi-frame objects and Siemens
mosaics (one file per volume, its slices tiled; unpacked with nibabel's dicomwrappers) too.

The voxel grid follows dcm2niix: i runs along a row (columns), j along a column flipped so that the stored image is
bottom-up, k along the slice normal; the affine maps (i, j, k) to RAS+ mm. Inconsistent spacing or orientation is
reported, never silently resampled.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from medical.nifti_io import VolumeError
from medical.volume import LPS_TO_RAS, Volume

SPACING_TOLERANCE = 1e-3  # relative; more variation than this between slice gaps is an error
ORIENTATION_TOLERANCE = 1e-4


@dataclass
class Series:
    """The files of one series, with the header of the first, as found in a folder."""

    uid: str
    files: list[Path]
    description: str
    modality: str


def find_series(folder: str | Path) -> list[Series]:
    """Every DICOM image series under `folder` (recursive); files that are not DICOM are skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VolumeError(f"{folder}: no such directory")
    groups: dict[str, list[Path]] = defaultdict(list)
    headers: dict[str, pydicom.Dataset] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError):
            continue
        if "SeriesInstanceUID" not in ds or "Rows" not in ds:
            continue  # not an image (a DICOMDIR, a report, a stray file)
        groups[str(ds.SeriesInstanceUID)].append(path)
        headers.setdefault(str(ds.SeriesInstanceUID), ds)
    if not groups:
        raise VolumeError(f"{folder}: no DICOM images found")
    return [
        Series(uid, files, str(headers[uid].get("SeriesDescription", "")), str(headers[uid].get("Modality", "")))
        for uid, files in groups.items()
    ]


def _float_list(ds: pydicom.Dataset, keyword: str, source: Path) -> np.ndarray:
    if keyword not in ds:
        raise VolumeError(f"{source}: missing {keyword}, cannot place the slice in space")
    return np.array([float(v) for v in ds[keyword].value], dtype=np.float64)


@dataclass
class _Slice:
    position: np.ndarray
    orientation: np.ndarray
    spacing: np.ndarray  # PixelSpacing: (row spacing, column spacing)
    shape: tuple[int, int]  # (rows, columns)
    load: Callable[[], np.ndarray]  # the pixels, rescaled: read only when the slice's volume is
    order: tuple  # temporal order key
    source: Path


def _classic_pixels(path: Path) -> np.ndarray:
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file has many faces in pydicom too
        raise VolumeError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None
    slope = float(ds.get("RescaleSlope", 1) or 1)
    inter = float(ds.get("RescaleIntercept", 0) or 0)
    return _pixels(path, ds).astype(np.float64) * slope + inter


def _classic_slices(files: list[Path]) -> tuple[list[_Slice], pydicom.Dataset]:
    """One slice per file, from the headers alone: a time series' pixels are read one volume at a time."""
    slices = []
    first = None
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        except Exception as exc:  # noqa: BLE001 - a damaged header has many faces in pydicom too
            raise VolumeError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None
        first = first or ds
        if "Rows" not in ds or "Columns" not in ds:
            raise VolumeError(f"{path}: no Rows/Columns, not an image")
        order = (
            int(ds.get("TemporalPositionIdentifier", 0) or 0),
            int(ds.get("AcquisitionNumber", 0) or 0),
            int(ds.get("InstanceNumber", 0) or 0),
        )
        slices.append(
            _Slice(
                _float_list(ds, "ImagePositionPatient", path),
                _float_list(ds, "ImageOrientationPatient", path),
                _float_list(ds, "PixelSpacing", path),
                (int(ds.Rows), int(ds.Columns)),
                partial(_classic_pixels, path),
                order,
                path,
            )
        )
    assert first is not None, "a series holds at least one file"
    return slices, first


@lru_cache(maxsize=1)  # a mosaic's slices are asked for in a row: its file is read and untiled once
def _mosaic_pixels(path: Path) -> np.ndarray:
    from nibabel.nicom.dicomwrappers import WrapperError, wrapper_from_data

    try:
        return wrapper_from_data(pydicom.dcmread(path, force=True)).get_data()  # (rows, cols, slices), rescaled
    except (WrapperError, ValueError, AttributeError, KeyError) as exc:
        raise VolumeError(f"{path}: unreadable Siemens mosaic ({type(exc).__name__}: {exc})") from None


def _mosaic_slice(path: Path, k: int) -> np.ndarray:
    return _mosaic_pixels(path)[..., k].astype(np.float64)


def _mosaic_slices(files: list[Path]) -> list[_Slice]:
    """Each Siemens mosaic file split into its slices, each with its own position (nibabel reads the CSA header);
    the pixels of a file are read when its volume is."""
    with warnings.catch_warnings():  # nibabel calls its DICOM readers experimental; its mosaic path is well used
        warnings.simplefilter("ignore", UserWarning)
        from nibabel.nicom.dicomwrappers import WrapperError, wrapper_from_data

    slices = []
    for path in files:
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
            wrapper = wrapper_from_data(ds)
            mosaic = getattr(wrapper, "is_mosaic", False)
            shape = wrapper.image_shape if mosaic else None
            affine = wrapper.affine  # (row, col, slice) -> LPS mm, first-voxel position corrected for the tiling
        except (WrapperError, ValueError, AttributeError, KeyError, TypeError) as exc:
            raise VolumeError(f"{path}: unreadable Siemens mosaic ({type(exc).__name__}: {exc})") from None
        if not mosaic or shape is None:
            raise VolumeError(f"{path}: marked MOSAIC but its CSA header gives no NumberOfImagesInMosaic")
        order = (int(ds.get("AcquisitionNumber", 0) or 0), int(ds.get("InstanceNumber", 0) or 0), 0)
        orientation = _float_list(ds, "ImageOrientationPatient", path)
        spacing = _float_list(ds, "PixelSpacing", path)
        for k in range(shape[2]):
            position = (affine @ np.array([0.0, 0.0, k, 1.0]))[:3]
            slices.append(
                _Slice(position, orientation, spacing, tuple(shape[:2]), partial(_mosaic_slice, path, k), order, path)
            )
    return slices


def _pixels(path: Path, ds: pydicom.Dataset) -> np.ndarray:
    """The file's pixel data, or a one-line error naming it (corrupt or truncated data has many faces in pydicom)."""
    try:
        return ds.pixel_array
    except Exception as exc:  # noqa: BLE001
        raise VolumeError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None


def _enhanced_slices(path: Path, ds: pydicom.Dataset) -> list[_Slice]:
    pixels = _pixels(path, ds)
    if pixels.ndim == 2:
        pixels = pixels[None]
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    slices = []
    for index, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):

        def group(keyword, frame=frame, index=index):
            for source in (frame, shared):
                if source is not None and keyword in source:
                    return source[keyword].value[0]
            raise VolumeError(f"{path}: frame {index + 1} has no {keyword}")

        position = np.array([float(v) for v in group("PlanePositionSequence").ImagePositionPatient])
        orientation = np.array([float(v) for v in group("PlaneOrientationSequence").ImageOrientationPatient])
        spacing = np.array([float(v) for v in group("PixelMeasuresSequence").PixelSpacing])
        try:
            transform = group("PixelValueTransformationSequence")
            slope, inter = float(transform.RescaleSlope), float(transform.RescaleIntercept)
        except VolumeError:
            slope, inter = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        temporal = 0
        try:
            temporal = int(group("FrameContentSequence").get("TemporalPositionIndex", 0) or 0)
        except VolumeError:
            pass
        plane = pixels[index].astype(np.float64) * slope + inter
        slices.append(
            _Slice(position, orientation, spacing, plane.shape, partial(np.array, plane), (temporal, 0, index), path)
        )
    return slices


def _slice_thickness(ref: pydicom.Dataset) -> float | None:
    """SliceThickness (mm), from the dataset or an enhanced object's shared pixel measures; None where absent."""
    value = ref.get("SliceThickness")
    if value in (None, "") and "SharedFunctionalGroupsSequence" in ref:
        measures = ref.SharedFunctionalGroupsSequence[0].get("PixelMeasuresSequence")
        value = measures[0].get("SliceThickness") if measures else None
    try:
        return float(value) if value not in (None, "") and float(value) > 0 else None
    except (TypeError, ValueError):
        return None


def is_enhanced(path: str | Path) -> bool:
    """Whether the DICOM file at `path` is an enhanced multi-frame object (per-frame functional groups)."""
    try:
        head = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except (InvalidDicomError, OSError, ValueError, TypeError, AttributeError):
        return False
    return "PerFrameFunctionalGroupsSequence" in head


def _slices_of(series: Series) -> tuple[list[_Slice], pydicom.Dataset]:
    """The series' slices, however they are stored, and the header that describes them."""
    first_path = series.files[0]
    head = pydicom.dcmread(first_path, stop_before_pixels=True, force=True)
    if "PerFrameFunctionalGroupsSequence" in head:
        if len(series.files) != 1:
            raise VolumeError(f"{first_path.parent}: series {series.uid} mixes several enhanced objects")
        ds = pydicom.dcmread(first_path, force=True)
        return _enhanced_slices(first_path, ds), ds
    if "MOSAIC" in [str(v).upper() for v in head.get("ImageType", [])]:
        return _mosaic_slices(series.files), head
    return _classic_slices(series.files)


def _check_alike(slices: list[_Slice], series: Series, where: Path) -> None:
    orientation = slices[0].orientation
    if any(np.abs(s.orientation - orientation).max() > ORIENTATION_TOLERANCE for s in slices):
        raise VolumeError(f"{where}: slices of series {series.uid} have different orientations")
    if any(s.shape != slices[0].shape for s in slices):
        raise VolumeError(f"{where}: slices of series {series.uid} have different sizes")


def _volumes(slices: list[_Slice], normal: np.ndarray, series: Series, where: Path) -> list[list[_Slice]]:
    """The series' volumes (one, or a time series' in temporal order), each its slices ordered along `normal`."""
    by_position: dict[float, list[_Slice]] = defaultdict(list)
    for s in slices:
        by_position[round(float(s.position @ normal), 3)].append(s)
    positions = sorted(by_position)
    counts = {len(v) for v in by_position.values()}
    if len(counts) != 1:
        raise VolumeError(f"{where}: series {series.uid} has a different number of images at different positions")
    if len(positions) > 2:  # from the positions themselves: the keys' rounding is coarser than the tolerance
        gaps = np.diff([np.mean([s.position @ normal for s in by_position[p]]) for p in positions])
        if np.abs(gaps - gaps.mean()).max() > SPACING_TOLERANCE * max(abs(gaps.mean()), 1e-6):
            raise VolumeError(
                f"{where}: uneven slice spacing in series {series.uid} "
                f"({gaps.min():.4f}..{gaps.max():.4f} mm); not resampling it silently"
            )
    at = [sorted(by_position[p], key=lambda s: s.order) for p in positions]
    return [[images[t] for images in at] for t in range(counts.pop())]


def _lps_affine(ordered: list[_Slice], normal: np.ndarray, rows: int, ref: pydicom.Dataset) -> np.ndarray:
    """(i = column, j = row flipped, k = slice) -> LPS mm, as dcm2niix stores the voxels."""
    row_cos, col_cos = ordered[0].orientation[:3], ordered[0].orientation[3:]
    row_spacing, col_spacing = ordered[0].spacing
    step = (
        (ordered[-1].position - ordered[0].position) / (len(ordered) - 1)
        if len(ordered) > 1
        else normal * float(ref.get("SpacingBetweenSlices", ref.get("SliceThickness", 1.0)) or 1.0)
    )
    lps = np.eye(4)
    lps[:3, 0] = row_cos * col_spacing
    lps[:3, 1] = -col_cos * row_spacing
    lps[:3, 2] = step
    lps[:3, 3] = ordered[0].position + col_cos * row_spacing * (rows - 1)
    return lps


class SeriesVolumes:
    """A series as the volumes it holds (a time series holds several): indexed from the headers once, each
    volume's pixels read only when it is asked for, so a long series never sits in memory whole."""

    def __init__(self, series: Series) -> None:
        slices, self.reference = _slices_of(series)
        self.series, self.where = series, series.files[0].parent
        _check_alike(slices, series, self.where)
        self.normal = np.cross(slices[0].orientation[:3], slices[0].orientation[3:])
        self.volumes = _volumes(slices, self.normal, series, self.where)

    @property
    def count(self) -> int:
        return len(self.volumes)

    def read(self, index: int) -> Volume:
        """Volume `index` (0 for a series of one)."""
        if not 0 <= index < self.count:
            raise VolumeError(f"{self.where}: volume {index} does not exist (0..{self.count - 1})")
        ordered, series = self.volumes[index], self.series
        # (row, column) pixels -> (i = column, j = row flipped), as dcm2niix stores them.
        stack = np.stack([s.load() for s in ordered], axis=-1)  # (rows, cols, k)
        data = np.ascontiguousarray(stack.transpose(1, 0, 2)[:, ::-1, :])
        lps = _lps_affine(ordered, self.normal, stack.shape[0], self.reference)
        meta = {
            "format": "dicom",
            "series_uid": series.uid,
            "files": [str(s.source) for s in ordered],
            "slice_thickness": _slice_thickness(self.reference),
            "volumes": self.count,
            "volume_index": index,
            "modality": series.modality,
            "description": series.description,
            "reference": self.reference,
        }
        padding = self.reference.get("PixelPaddingValue")  # as stored: rescaled like the pixels
        if isinstance(padding, (int, float)):
            meta["padding"] = float(padding) * float(self.reference.get("RescaleSlope", 1) or 1) + float(
                self.reference.get("RescaleIntercept", 0) or 0
            )
        integral = np.all(data == np.round(data)) and data.min() >= -32768 and data.max() < 32768
        stored = np.dtype(np.int16) if integral else np.dtype(np.float32)
        return Volume(data=data, affine=LPS_TO_RAS @ lps, source=str(self.where), dtype=stored, meta=meta)


def read_series(series: Series, volume_index: int | None = None) -> Volume:
    """One volume of a series; a time series needs `volume_index` (else a clear error)."""
    volumes = SeriesVolumes(series)
    if volumes.count > 1 and volume_index is None:
        raise VolumeError(
            f"{volumes.where}: series {series.uid} holds {volumes.count} volumes (a time series); "
            "pick one with --volume N"
        )
    return volumes.read(volume_index or 0)
