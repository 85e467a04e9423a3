"""Diffusion gradients beside a NIfTI (FSL's `.bval`/`.bvec`, as dcm2niix and BIDS write them), carried to the
upscaled output. Upscaling scales the voxel axes and keeps their directions, so the b-vectors, which FSL gives in
the image's own axes, hold unchanged; with `--volume N` only that volume's column goes with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medical.volume import VolumeError
from training.atomic import atomic_path

GRADIENTS = "unchanged: upscaling keeps the voxel axes' directions, the frame FSL's b-vectors are given in"


def beside(image: str | Path) -> tuple[Path, ...]:
    """The `.bval` and `.bvec` named like `image` (FSL, dcm2niix), those that exist."""
    stem = Path(str(image).removesuffix(".gz").removesuffix(".nii"))
    return tuple(p for p in (stem.with_name(stem.name + ".bval"), stem.with_name(stem.name + ".bvec")) if p.is_file())


def _table(path: Path, rows: int, volumes: int) -> np.ndarray:
    try:
        table = np.loadtxt(path, ndmin=2)
    except (OSError, ValueError) as exc:
        raise VolumeError(f"{path}: not a table of numbers ({exc})") from None
    if table.shape != (rows, volumes):
        raise VolumeError(
            f"{path}: {table.shape[0]}x{table.shape[1]} values for {volumes} volumes "
            f"(FSL's layout is {rows} row(s), one column per volume)"
        )
    return table


def load(files: tuple[str | Path, ...], volumes: int) -> list[tuple[Path, np.ndarray]]:
    """Each `.bval`/`.bvec` in `files` with its table, checked against the series' `volumes` before any work."""
    return [(path, _table(path, 1 if path.suffix == ".bval" else 3, volumes)) for path in map(Path, files)]


def carry(tables: list[tuple[Path, np.ndarray]], target_stem: Path, index: int | None) -> list[str]:
    """Write each table to `target_stem`.bval/.bvec; only column `index` where one volume was taken. The paths."""
    written = []
    for path, table in tables:
        if index is not None:
            table = table[:, index : index + 1]
        target = target_stem.with_name(target_stem.name + path.suffix)
        text = "\n".join(" ".join(f"{v:.10g}" for v in row) for row in table) + "\n"
        with atomic_path(target, suffix=path.suffix) as tmp:
            Path(tmp).write_text(text)
        written.append(str(target))
    return written
