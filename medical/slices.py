"""Training images for the grey models: the slices of MRI volumes as 8-bit PNGs, windowed as inference windows them.

    python -m medical.slices ../shared/data/mri/train/*.nii.gz ../shared/data/mri/train/norm.mgz -o runs/mri-slices

The training CLI then trains on that folder with `model.channels = 1` (see training/configs/mri-x2.toml). Slices
from all three axes are exported; slices that are almost empty (background) are skipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image
from tqdm import tqdm

from medical.intensity import robust_window


def export_slices(volume_path: str | Path, out_dir: str | Path, min_size: int = 96,
                  min_foreground: float = 0.2) -> int:
    """Write every informative slice of one volume (any axis) as PNG; returns how many were written."""
    volume_path, out_dir = Path(volume_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = np.asarray(nib.load(str(volume_path)).dataobj, dtype=np.float64)
    if data.ndim == 4:
        data = data[..., 0]
    window = robust_window(data)
    unit = np.clip(window.forward(data), 0, 1)
    stem = volume_path.name.split(".")[0]
    written = 0
    for axis in range(3):
        for index in range(unit.shape[axis]):
            plane = np.take(unit, index, axis=axis)
            if min(plane.shape) < min_size or np.mean(plane > 0.05) < min_foreground:
                continue
            Image.fromarray((plane * 255).round().astype(np.uint8)).save(out_dir / f"{stem}_a{axis}_{index:04d}.png")
            written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medical.slices", description=__doc__.split("\n")[0])
    parser.add_argument("volumes", nargs="+", help="training volumes (.nii, .nii.gz, .mgz); never evaluation ones")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    total = 0
    for path in tqdm(args.volumes, desc="volumes", unit="vol"):
        total += export_slices(path, args.output)
    print(f"wrote {total} slices to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
