"""Received series, collected until complete (quiet for a while, or a given count), claimed for work, and refused
when they are not a volume (a localiser, a single slice, mixed orientations, a secondary capture)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from medical.node.receiver import sync_folder

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its multi-frame kinds, .7.1 to .7.4


def _instances(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.dcm") if p.is_file())


def complete(incoming: Path, quiet_seconds: float, count: int | None = None, now: float | None = None) -> list[Path]:
    """The series folders in `incoming` with nothing new for `quiet_seconds` (file times, so this holds across a
    restart), or with `count` instances; oldest first."""
    now = time.time() if now is None else now
    ready = []
    for folder in (p for p in incoming.iterdir() if p.is_dir()) if incoming.is_dir() else ():
        files = _instances(folder)
        if not files:
            continue
        last = max(p.stat().st_mtime for p in files)
        if now - last >= quiet_seconds or (count is not None and len(files) >= count):
            ready.append((last, folder))
    return [folder for _, folder in sorted(ready)]


def claim(folder: Path, work: Path) -> Path:
    """Move a complete series out of `incoming` to `work`/<job>/in (one rename: instances arriving later start a
    new collection); the job's folder."""
    job = work / f"{time.time_ns()}-{folder.name}"
    job.mkdir(parents=True)
    os.replace(folder, job / "in")
    sync_folder(job)
    sync_folder(work)
    sync_folder(folder.parent)
    return job


def refusal(folder: Path) -> str | None:
    """Why the series in `folder` is not a volume to upscale, in a few words; None if it may be one."""
    import pydicom

    heads = []
    for path in _instances(folder):
        try:
            heads.append(pydicom.dcmread(path, stop_before_pixels=True))
        except Exception as exc:  # noqa: BLE001 - a damaged header has many faces in pydicom
            return f"an unreadable instance ({type(exc).__name__})"
    if not heads:
        return "no instances"
    first = heads[0]
    image_type = [str(v).upper() for v in first.get("ImageType", [])]
    if str(first.get("SOPClassUID", "")).startswith(SECONDARY_CAPTURE):
        return "a secondary capture, not an acquired volume"
    if "LOCALIZER" in image_type:
        return "a localiser"
    if "Rows" not in first:
        return "not an image series"
    frames = sum(int(h.get("NumberOfFrames", 1) or 1) for h in heads)
    if frames < 2 and "MOSAIC" not in image_type:
        return "a single slice, not a volume"
    orientations = {tuple(round(float(v), 4) for v in h.get("ImageOrientationPatient", [])) for h in heads}
    if len(orientations) > 1:
        return "mixed orientations"
    return None


def series_uid(folder: Path) -> str:
    """The Series Instance UID the instances in `folder` share (as received: for the log and the reader only)."""
    import pydicom

    return str(pydicom.dcmread(_instances(folder)[0], stop_before_pixels=True).SeriesInstanceUID)
