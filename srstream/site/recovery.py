"""Segments whose writer stopped without finishing them (the process killed, the machine or Ray node gone): when the
camera starts again (here, or on another node writing to the same storage), each earlier run's segments that have
no sidecar get one, from the provenance their own container holds, with a note saying so. A segment the muxer had
listed is whole; one it had not is cut where the writer stopped (crash-safe, it plays up to its last second).
A remnant with no picture (killed before its first fragment) is named in the log and left alone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

from srstream.site.provenance import inside, sidecar_of, write_sidecar
from srstream.site.recordings import overlapping, rows_of, runs_of, spans_of

log = logging.getLogger("srstream.site")
WHOLE = "written after its writer stopped: the segment was finished, its sidecar was not"
CUT = "written after its writer stopped: the segment ends where the writer stopped"


def adopt(directory: Path, camera: str) -> int:
    """Sidecars for the segments of `camera`'s earlier runs that have none (call it before a run starts); how
    many."""
    written = 0
    for listing in sorted(directory.glob(f".{runs_of(camera)}.segments.csv")):
        stem = listing.name.removeprefix(".").removesuffix(".segments.csv")
        started = _started(stem)
        rows = rows_of(listing)
        listed = {name: (float(a), float(b)) for name, a, b in rows}
        cut_at = max((b for a, b in listed.values()), default=0.0)  # where an unlisted (cut) segment began
        originals = spans_of(directory, [(p, started) for p in sorted(directory.glob(f".{stem}_orig*.segments.csv"))])
        for segment in sorted(directory.glob(f"{stem}_[0-9][0-9][0-9].*")):
            if segment.suffix == ".json" or sidecar_of(segment).exists():
                continue
            provenance = inside(segment)
            if provenance is None:
                log.warning(
                    "srstream: %s: %s holds no picture (its writer stopped first); left as it is", camera, segment.name
                )
                continue
            a, b = listed.get(segment.name, (cut_at, None))
            begin = started + timedelta(seconds=a)
            end = (
                started + timedelta(seconds=b)
                if b is not None
                else datetime.fromtimestamp(segment.stat().st_mtime, UTC)
            )
            write_sidecar(
                segment,
                provenance,
                begin,
                end,
                overlapping(originals, begin, end),
                note=WHOLE if b is not None else CUT,
            )
            written += 1
    if written:
        log.warning("srstream: %s: %d segments of an earlier run had no sidecar; written now", camera, written)
    return written


def _started(stem: str) -> datetime:
    """A run's start from its stem (lobby_20261207T041500Z)."""
    return datetime.strptime(stem.rsplit("_", 1)[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
