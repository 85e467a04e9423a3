"""NIfTI in and out with nibabel: the stored dtype and scaling, and the sform/qform codes, carried through."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import nibabel as nib
import numpy as np

from medical.intensity import cast_like
from medical.volume import Volume, VolumeError
from training.atomic import atomic_path

__all__ = ["NiftiVolumes", "VolumeError", "is_nifti", "read_nifti", "write_nifti", "write_nifti_series"]


def is_nifti(path: str | Path) -> bool:
    """.nii or .nii.gz by name."""
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


class NiftiVolumes:
    """A scalar NIfTI as the volumes it holds (a 4-D file holds several), each read from disk only when asked for;
    RGB and complex voxels are refused."""

    def __init__(self, path: str | Path) -> None:
        self.path = path = Path(path)
        try:
            img = nib.load(str(path))
        except FileNotFoundError:
            raise VolumeError(f"{path}: no such file") from None
        except Exception as exc:  # noqa: BLE001 - nibabel raises many kinds on foreign bytes
            raise VolumeError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
        if not isinstance(img, nib.Nifti1Image):  # NIfTI-2 included; another format nibabel reads by its content
            raise VolumeError(f"{path}: not a readable NIfTI file (nibabel reads it as {type(img).__name__})")
        self.img = img
        stored = img.get_data_dtype()
        if stored.names is not None or stored.kind == "c":
            raise VolumeError(f"{path}: {stored} voxels (RGB or complex) are not a scalar volume")
        shape = img.shape[:3] if len(img.shape) == 4 and img.shape[3] == 1 else img.shape
        if len(shape) not in (3, 4):
            raise VolumeError(f"{path}: {len(shape)}-D image, expected a 3-D volume or a 4-D series of them")
        self.shape, self.stored = shape, np.dtype(stored)

    @property
    def count(self) -> int:
        return self.shape[3] if len(self.shape) == 4 else 1

    def read(self, index: int) -> Volume:
        """Volume `index` (0 for a 3-D file)."""
        if not 0 <= index < self.count:
            raise VolumeError(f"{self.path}: volume {index} does not exist (0..{self.count - 1})")
        img, header = self.img, self.img.header
        if len(self.shape) == 4:
            data = np.asarray(img.dataobj[..., index], dtype=np.float64)
        else:
            data = np.asarray(img.dataobj, dtype=np.float64).reshape(self.shape)
        # nibabel moves the stored scaling onto the array proxy when it loads, leaving the header's fields empty.
        slope, inter = float(getattr(img.dataobj, "slope", 1.0)), float(getattr(img.dataobj, "inter", 0.0))
        meta = {
            "format": "nifti",
            "sform_code": int(header["sform_code"]),
            "qform_code": int(header["qform_code"]),
            "slope": slope,
            "inter": inter,
            "xyzt_units": header.get_xyzt_units(),
            "descrip": header["descrip"].tobytes().rstrip(b"\0"),
            "volumes": self.count,
            "volume_index": index,
        }
        if len(self.shape) == 4:  # the 4th axis's step (TR for fMRI) and start, in xyzt_units' time unit
            meta.update(time_step=float(header.get_zooms()[3]), time_offset=float(header["toffset"]))
        return Volume(
            data=data,
            affine=np.array(img.affine, dtype=np.float64),
            source=str(self.path),
            dtype=self.stored,
            meta=meta,
        )


def read_nifti(path: str | Path, volume_index: int | None = None) -> Volume:
    """A 3-D scalar NIfTI; a 4-D one needs `volume_index` (else a clear error)."""
    volumes = NiftiVolumes(path)
    if volumes.count > 1 and volume_index is None:
        raise VolumeError(f"{path}: 4-D ({volumes.count} volumes); pick one with --volume N")
    return volumes.read(volume_index or 0)


def _header(first: Volume, description: str, count: int | None) -> tuple[nib.Nifti1Header, float, float]:
    """The output's header (units, codes, description, the 4th axis's step) and the stored scaling."""
    slope, inter = first.meta.get("slope"), first.meta.get("inter")
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    img = nib.Nifti1Image(np.zeros((1, 1, 1), first.dtype), first.affine)
    header = img.header
    header.set_xyzt_units(*first.meta.get("xyzt_units", ("mm", "sec")))
    img.set_sform(first.affine, int(first.meta.get("sform_code", 1) or 1))
    img.set_qform(first.affine, int(first.meta.get("qform_code", 1) or 1))
    if description:
        header["descrip"] = description.encode()[:79]
    if count is not None:
        header["toffset"] = first.meta.get("time_offset", 0.0)
    return header, slope, inter


def _scratch(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> np.memmap:
    """A memory-mapped array in a file at `path`, its space claimed at once: a full disk is an OSError here, not
    a SIGBUS when a page is first written."""
    stack = np.lib.format.open_memmap(path, "w+", dtype, shape, fortran_order=True)
    with open(path, "r+b") as f:
        os.posix_fallocate(f.fileno(), 0, os.path.getsize(path))
    return stack


def write_nifti(volume: Volume, path: str | Path, description: str = "") -> int:
    """Write `volume` with its affine in both sform and qform (codes kept), stored like the input (dtype, slope,
    intercept), atomically. Returns how many voxels had to be clipped to fit the stored type (0 normally)."""
    return write_nifti_series([volume], path, description, None)


def write_nifti_series(
    volumes: Iterable[Volume], path: str | Path, description: str = "", count: int | None = None
) -> int:
    """`volumes` as one file: 3-D where `count` is None (one volume), else 4-D with `count` volumes and the 4th
    axis's step (TR) and offset kept. Each volume is cast to the stored type as it comes and kept in a
    memory-mapped file beside the output until all are there, so the series never sits in memory as floats.
    Atomic; returns how many voxels had to be clipped to fit the stored type (0 normally)."""
    path = Path(path)
    clipped, header, scratch = 0, None, None
    stack: np.ndarray | None = None
    first: Volume | None = None
    suffix = ".nii.gz" if str(path).endswith(".gz") else ".nii"
    try:
        with atomic_path(path, suffix=suffix) as tmp:
            for t, volume in enumerate(volumes):
                if header is None:
                    first = volume
                    header, slope, inter = _header(volume, description, count)
                    if count is not None:  # a series: its volumes wait on disk, not in memory
                        scratch = Path(tmp).with_name(Path(tmp).name + ".voxels")
                        stack = _scratch(scratch, volume.dtype, (*volume.shape, count))
                stored, n = cast_like((volume.data - inter) / slope, volume.dtype)
                clipped += n
                if count is None:
                    stack = stored  # one volume: already in memory, written straight from it
                else:
                    assert stack is not None  # the scratch file, made for the first volume
                    stack[..., t] = stored
            if stack is None or first is None:
                raise VolumeError(f"{path}: no volumes to write")
            img = nib.Nifti1Image(stack, first.affine, header)
            if (slope, inter) != (1.0, 0.0):
                img.header.set_slope_inter(slope, inter)
            if count is not None:
                img.header.set_zooms((*img.header.get_zooms()[:3], first.meta.get("time_step", 1.0)))
            nib.save(img, tmp)
    finally:
        if scratch is not None:
            scratch.unlink(missing_ok=True)
    return clipped
