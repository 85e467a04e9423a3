"""Training images for the grey models: the slices of MRI or CT volumes as 8-bit PNGs, windowed as inference
windows them.

    python -m medical.slices ../shared/data/mri/train/*.nii.gz ../shared/data/mri/train/norm.mgz -o runs/mri-slices
    python -m medical.slices /data/ct/train_series_folder ... -o runs/ct-slices      # DICOM folders too

The training CLI then trains on that folder with `model.channels = 1` (see training/configs/mri-x2.toml). Slices
from all three axes of a near-isotropic volume are exported, and only the sharp ones (perpendicular to the thick
axis) of a volume with thick slices; slices that are almost empty (background) are skipped. A DICOM folder is read
by srmed's own reader (its first series), with the scanner's padding left out of the window.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.spatialimages import SpatialImage
from PIL import Image
from tqdm import tqdm

from medical.intensity import robust_window
from medical.plan import THICK
from medical.volume import VolumeError


def export_slices(volume_path: str | Path, out_dir: str | Path, min_size: int = 96, min_foreground: float = 0.2) -> int:
    """Write every informative slice of one volume (any axis) as PNG; returns how many were written."""
    volume_path, out_dir = Path(volume_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data, spacing, padding = _read(volume_path)
    window = robust_window(data, padding=padding)
    unit = np.clip(window.forward(data), 0, 1)
    stem = volume_path.name.split(".")[0]
    written = 0
    coarse = int(np.argmax(spacing))
    thick = spacing[coarse] > THICK * max(s for a, s in enumerate(spacing) if a != coarse)
    for axis in [coarse] if thick else range(3):
        for index in range(unit.shape[axis]):
            plane = np.take(unit, index, axis=axis)
            if min(plane.shape) < min_size or np.mean(plane > 0.05) < min_foreground:
                continue
            Image.fromarray((plane * 255).round().astype(np.uint8)).save(out_dir / f"{stem}_a{axis}_{index:04d}.png")
            written += 1
    return written


def _read(path: Path) -> tuple[np.ndarray, tuple[float, ...], float | None]:
    """Voxels, spacing (mm) and padding value of a volume file (NIfTI, MGH: the first volume) or a DICOM folder."""
    if path.is_dir():
        from medical.dicom_read import find_series, read_series

        volume = read_series(find_series(path)[0], 0)
        return volume.data, volume.spacing, volume.meta.get("padding")
    img = nib.load(str(path))
    if not isinstance(img, SpatialImage):
        raise VolumeError(f"{path}: not a volume image (nibabel reads it as {type(img).__name__})")
    data = np.asarray(img.dataobj[..., 0] if len(img.shape) == 4 else img.dataobj, dtype=np.float64)
    return data, tuple(float(z) for z in img.header.get_zooms()[:3]), None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medical.slices", description=__doc__.split("\n")[0])
    parser.add_argument(
        "volumes", nargs="+", help="training volumes (.nii, .nii.gz, .mgz, DICOM folders); never evaluation ones"
    )
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    total = 0
    for path in tqdm(args.volumes, desc="volumes", unit="vol"):
        total += export_slices(path, args.output)
    print(f"wrote {total} slices to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
