"""Segments whose writer stopped without finishing them (the process killed, the machine or Ray node gone): when the
camera starts again (here, or on another node writing to the same storage), each earlier run's segments that have
no sidecar get one, from the provenance their own container holds, with a note saying so. A segment the muxer had
listed is whole; one it had not is cut where the writer stopped (crash-safe, it plays up to its last second).
A remnant with no picture (killed before its first fragment) is named in the log and left alone.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

from srstream.site.provenance import inside, sidecar_of, write_sidecar
from srstream.site.recordings import ORIGINAL_MARGIN_S, rows_of, runs_of

log = logging.getLogger("srstream.site")
WHOLE = "written after its writer stopped: the segment was finished, its sidecar was not"
CUT = "written after its writer stopped: the segment ends where the writer stopped"


def adopt(directory: Path, camera: str, active: set[str]) -> int:
    """Sidecars for the segments of `camera`'s runs (other than the `active` run stems) that have none; how many."""
    written = 0
    for listing in sorted(directory.glob(f".{runs_of(camera)}*.segments.csv")):
        stem = listing.name.removeprefix(".").removesuffix(".segments.csv")
        if "_orig" in stem or stem in active:
            continue
        started = _started(stem)
        listed = {name: (start, end) for name, start, end in rows_of(listing)}
        for segment in sorted(directory.glob(f"{stem}_[0-9][0-9][0-9].*")):
            if segment.suffix == ".json" or sidecar_of(segment).exists() or started is None:
                continue
            provenance = inside(segment)
            if provenance is None:
                log.warning("srstream: %s: %s holds no picture (its writer stopped first); left as it is", camera,
                            segment.name)
                continue
            span = listed.get(segment.name)
            begin = started + timedelta(seconds=float(span[0])) if span else \
                datetime.fromtimestamp(segment.stat().st_ctime, timezone.utc)
            end = started + timedelta(seconds=float(span[1])) if span else \
                datetime.fromtimestamp(segment.stat().st_mtime, timezone.utc)
            write_sidecar(segment, provenance, begin, end, _originals(directory, stem, started, begin, end),
                          note=WHOLE if span else CUT)
            written += 1
    if written:
        log.warning("srstream: %s: %d segments of an earlier run had no sidecar; written now", camera, written)
    return written


def _started(stem: str) -> datetime | None:
    try:
        return datetime.strptime(stem.rsplit("_", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except (IndexError, ValueError):
        return None


def _originals(directory: Path, stem: str, started: datetime, begin: datetime, end: datetime) -> list[Path]:
    """The run's original segments that overlap [begin, end] (their series started about when the run did)."""
    margin = timedelta(seconds=ORIGINAL_MARGIN_S)
    found = []
    for listing in sorted(directory.glob(f".{stem}_orig*.segments.csv")):
        for name, a, b in rows_of(listing):
            if started + timedelta(seconds=float(a)) <= end + margin and \
                    started + timedelta(seconds=float(b)) >= begin - margin and (directory / name).is_file():
                found.append(directory / name)
    return found
