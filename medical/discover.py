"""`srmed`'s inputs as volumes to do: files as they are, folders expanded into their DICOM series."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medical import formats
from medical.volume import VolumeError

if TYPE_CHECKING:
    from medical.formats import VolumeSource


@dataclass(frozen=True)
class Task:
    """One volume to process: where it comes from, its format's name, and what to call its outputs."""

    source: str
    series_uid: str | None
    name: str
    format: str

    def gradients(self) -> tuple[str, ...]:
        """Diffusion `.bval`/`.bvec` files that go with a NIfTI input (named like it), to carry to its output."""
        from medical.gradients import beside

        return tuple(map(str, beside(self.source))) if self.format == "nifti" else ()

    def open(self) -> VolumeSource:
        """Its volumes (one, or a time series'), read by its format one at a time."""
        return formats.by_name(self.format).open(Path(self.source), self.series_uid)


def _file_task(path: Path) -> Task:
    read_as = formats.for_file(path)
    return Task(str(path), None, read_as.stem(path), read_as.name)


def _folder_tasks(path: Path) -> list[Task]:
    from medical.dicom_read import find_series

    tasks = []
    for n, series in enumerate(find_series(path)):
        label = re.sub(r"[^A-Za-z0-9_-]+", "_", series.description).strip("_") or "series"
        tasks.append(Task(str(path), series.uid, f"{path.name}_{n + 1:02d}_{label}", formats.for_series(series).name))
    return tasks


def discover(inputs: list[str]) -> list[Task]:
    """Files as they are (a missing NIfTI name too: its reader says so); folders expanded into their DICOM series."""
    tasks = []
    for item in inputs:
        path = Path(item)
        if path.is_file() or formats.claiming(path):
            tasks.append(_file_task(path))
        elif (path / "dataset_description.json").is_file():  # BIDS: its names and sidecars need the BIDS app
            raise VolumeError(f"{path}: a BIDS dataset: use `srmed bids {path} OUTPUT_DIR participant`")
        elif path.is_dir():
            tasks.extend(_folder_tasks(path))
        else:
            raise VolumeError(f"{path}: no such file or directory")
    return tasks
