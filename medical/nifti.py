"""NIfTI in and out with nibabel: the stored dtype and scaling, and the sform/qform codes, carried through."""
from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from medical.intensity import cast_like
from medical.volume import Volume, VolumeError
from training.atomic import atomic_path

__all__ = ["VolumeError", "is_nifti", "read_nifti", "write_nifti"]


def is_nifti(path: str | Path) -> bool:
    """.nii or .nii.gz by name."""
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def read_nifti(path: str | Path, volume_index: int | None = None) -> Volume:
    """A 3-D scalar NIfTI; a 4-D one needs `volume_index` (else a clear error); RGB and complex are refused."""
    path = Path(path)
    try:
        img = nib.load(str(path))
    except FileNotFoundError:
        raise VolumeError(f"{path}: no such file") from None
    except Exception as exc:  # nibabel raises many kinds on foreign bytes
        raise VolumeError(f"{path}: not a readable NIfTI file ({type(exc).__name__}: {exc})") from None
    stored = img.get_data_dtype()
    if stored.names is not None or stored.kind == "c":
        raise VolumeError(f"{path}: {stored} voxels (RGB or complex) are not a scalar volume")
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) == 4:
        if volume_index is None:
            raise VolumeError(f"{path}: 4-D ({shape[3]} volumes); pick one with --volume N or split it first")
        if not 0 <= volume_index < shape[3]:
            raise VolumeError(f"{path}: volume {volume_index} does not exist (0..{shape[3] - 1})")
        data = np.asarray(img.dataobj[..., volume_index], dtype=np.float64)
    elif len(shape) == 3:
        data = np.asarray(img.dataobj, dtype=np.float64).reshape(shape)
    else:
        raise VolumeError(f"{path}: {len(shape)}-D image, expected a 3-D volume")
    header = img.header
    # nibabel moves the stored scaling onto the array proxy when it loads, leaving the header's fields empty.
    slope, inter = float(getattr(img.dataobj, "slope", 1.0)), float(getattr(img.dataobj, "inter", 0.0))
    return Volume(data=data, affine=np.array(img.affine, dtype=np.float64), source=str(path), dtype=np.dtype(stored),
                  meta={"format": "nifti", "sform_code": int(header["sform_code"]),
                        "qform_code": int(header["qform_code"]), "slope": slope, "inter": inter,
                        "xyzt_units": header.get_xyzt_units(), "descrip": header["descrip"].tobytes().rstrip(b"\0")})


def write_nifti(volume: Volume, path: str | Path, description: str = "") -> int:
    """Write `volume` with its affine in both sform and qform (codes kept), stored like the input (dtype, slope,
    intercept), atomically. Returns how many voxels had to be clipped to fit the stored type (0 normally)."""
    path = Path(path)
    slope, inter = volume.meta.get("slope"), volume.meta.get("inter")
    slope = 1.0 if slope is None or not np.isfinite(slope) or slope == 0 else float(slope)
    inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
    stored, clipped = cast_like((volume.data - inter) / slope, volume.dtype)
    img = nib.Nifti1Image(stored, volume.affine)
    header = img.header
    if (slope, inter) != (1.0, 0.0):
        header.set_slope_inter(slope, inter)
    header.set_xyzt_units(*volume.meta.get("xyzt_units", ("mm", "sec")))
    img.set_sform(volume.affine, int(volume.meta.get("sform_code", 1) or 1))
    img.set_qform(volume.affine, int(volume.meta.get("qform_code", 1) or 1))
    if description:
        header["descrip"] = description.encode()[:79]
    with atomic_path(path, suffix=".nii.gz" if str(path).endswith(".gz") else ".nii") as tmp:
        nib.save(img, tmp)
    return clipped
