"""A camera's recordings directory: each segment the muxer finishes gets its sidecar (provenance.py), and the oldest
finished segments go (with their sidecars and originals) when they pass the camera's age or byte limit. The segment
being written is never removed: a segment counts as finished once the muxer lists it, or once its run has ended.

Names: NAME_YYYYmmddTHHMMSSZ_000.mp4 for the upscaled segments of the run started at that moment (UTC), and
NAME_YYYYmmddTHHMMSSZ_orig_000.EXT for the camera's own stream beside them.
"""

from __future__ import annotations

import csv
import glob
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from srstream.site.original import OriginalRecorder
from srstream.site.provenance import Provenance, sidecar_of, write_sidecar

log = logging.getLogger("srstream.site")
ORIGINAL_MARGIN_S = 2.0


def rows_of(listing: Path) -> list[tuple[str, str, str]]:
    """(name, start, end) of each segment a segment muxer has listed as finished."""
    try:
        with open(listing, newline="", encoding="utf-8") as f:
            return [(r[0], r[1], r[2]) for r in csv.reader(f) if len(r) >= 3]
    except FileNotFoundError:
        return []


def spans_of(directory: Path, series: list[tuple[Path, datetime]]) -> list[tuple[Path, datetime, datetime]]:
    """(segment, start, end) in wall time of every segment listed in each (segment list, started at) of `series`."""
    return [
        (directory / name, started + timedelta(seconds=float(a)), started + timedelta(seconds=float(b)))
        for listing, started in series
        for name, a, b in rows_of(listing)
    ]


def overlapping(spans: list[tuple[Path, datetime, datetime]], begin: datetime, finish: datetime) -> list[Path]:
    """The segments of `spans` on disk that overlap [begin, finish], with ORIGINAL_MARGIN_S either side (both
    spans are known to about a second)."""
    margin = timedelta(seconds=ORIGINAL_MARGIN_S)
    return [path for path, a, b in spans if a <= finish + margin and b >= begin - margin and path.is_file()]


def _mtime(path: Path) -> float:
    """When the file was last written (0 for one removed meanwhile: another reader's retention)."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _originals_named(segment: Path) -> list[str]:
    """The original segments a segment's sidecar names (none without a readable sidecar)."""
    try:
        return [o["segment"] for o in json.loads(sidecar_of(segment).read_text()).get("originals", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def runs_of(camera: str) -> str:
    """A glob for the stems of `camera`'s runs: its name and a run's start, so that `lobby` never takes `lobby_2`'s
    files in a directory they share."""
    return f"{glob.escape(camera)}_{'[0-9]' * 8}T{'[0-9]' * 6}Z"


def run_stem(camera: str, started: datetime) -> str:
    """The name every file of one run of `camera` starts with: lobby_20261207T041500Z."""
    return f"{camera}_{started.astimezone(UTC):%Y%m%dT%H%M%SZ}"


@dataclass
class Run:
    """One run's segments being listed: the muxer's list file, where it was read up to, and its provenance."""

    listing: Path
    started: datetime
    provenance: Provenance
    originals: OriginalRecorder | None = None  # the camera's own stream (keep_original), matched by time
    lines_done: int = 0
    active: bool = True


@dataclass
class Recordings:
    """One camera's directory and its limits; `poll()` writes new sidecars and applies the limits."""

    directory: Path
    camera: str
    keep_s: float | None = None
    keep_bytes: int | None = None
    runs: list[Run] = field(default_factory=list)
    removed: int = 0
    _limits_at: float = 0.0

    def add_run(self, run: Run) -> None:
        self.runs.append(run)

    def end_run(self, listing: Path) -> None:
        """The run writing `listing` has ended: its last segment is finished."""
        self.poll()
        for run in self.runs:
            if run.listing == listing:
                run.active = False
        self.runs = [r for r in self.runs if r.active]

    def poll(self) -> None:
        """Sidecars for newly finished segments, then the limits (when a segment was finished, or a minute on)."""
        finished = sum(self._new_segments(run) for run in self.runs)
        if finished or time.monotonic() - self._limits_at > 60:
            self._limits_at = time.monotonic()
            self._apply_limits()

    def bytes_used(self) -> int:
        """Everything this camera keeps on disk: segments, originals and sidecars."""
        return sum(_size(p) for p in self._files())

    def _new_segments(self, run: Run) -> int:
        """Sidecars for the segments listed since the last look (each once the originals it overlaps are
        finished, or its run has ended); how many."""
        before = run.lines_done
        for name, start, end in rows_of(run.listing)[run.lines_done :]:
            segment = self.directory / name
            begin = run.started + timedelta(seconds=float(start))
            finish = run.started + timedelta(seconds=float(end))
            originals = self._originals(run, begin, finish)
            if originals is None:
                break
            if segment.is_file():
                write_sidecar(segment, run.provenance, begin, finish, originals)
            run.lines_done += 1
        return run.lines_done - before

    def _originals(self, run: Run, begin: datetime, finish: datetime) -> list[Path] | None:
        """The camera's own segments that overlap [begin, finish] (with ORIGINAL_MARGIN_S either side, since both
        spans are known to about a second); None while one that may overlap is still being written."""
        recorder = run.originals
        if recorder is None:
            return []
        spans = spans_of(self.directory, recorder.series)
        if recorder.writing and not any(end >= finish + timedelta(seconds=ORIGINAL_MARGIN_S) for _, _, end in spans):
            return None
        return overlapping(spans, begin, finish)

    def _files(self) -> list[Path]:
        return [p for p in self.directory.glob(f"{runs_of(self.camera)}_*") if p.is_file()]

    def _finished_segments(self) -> list[Path]:
        """Upscaled segments that are finished (sidecar written, or of a run no longer writing), oldest first."""
        open_stems = {r.listing.name.removeprefix(".").removesuffix(".segments.csv") for r in self.runs if r.active}
        done = [
            p
            for p in self._files()
            if p.suffix != ".json"
            and "_orig_" not in p.name
            and (sidecar_of(p).is_file() or not any(p.name.startswith(s) for s in open_stems))
        ]
        return sorted(done, key=_mtime)

    def _apply_limits(self) -> None:
        if self.keep_s is None and self.keep_bytes is None:
            return
        now = time.time()
        finished = self._finished_segments()
        used = self.bytes_used() if self.keep_bytes is not None else 0
        # The segments being written grow until the next cut: leave them the room the last ones took, so that the
        # directory stays under keep_bytes all the time, not only just after a cut.
        writing = any(run.active for run in self.runs)
        budget = (self.keep_bytes - (self._headroom(finished) if writing else 0)) if self.keep_bytes is not None else 0
        for i, segment in enumerate(finished):
            too_old = self.keep_s is not None and now - _mtime(segment) > self.keep_s
            too_big = self.keep_bytes is not None and used > budget
            if not (too_old or too_big):
                break
            used -= self._remove(segment, finished[i + 1] if i + 1 < len(finished) else None)

    def _original_files(self) -> list[Path]:
        """This camera's original segments, oldest first."""
        return sorted(self.directory.glob(f"{runs_of(self.camera)}_orig_*"), key=_mtime)

    def _headroom(self, finished: list[Path]) -> int:
        """The bytes of the newest finished segment and original: about what the open ones will reach."""
        newest = [finished[-1]] if finished else []
        return sum(_size(p) for p in newest + self._original_files()[-2:-1])

    def _remove(self, segment: Path, following: Path | None) -> int:
        """Remove a segment, its sidecar and the originals it names that the following segment does not; the bytes
        freed (segments go oldest first, so no older one still names them; the original being written stays)."""
        kept = set(_originals_named(following)) if following is not None else set()
        originals = self._original_files()
        writing = originals[-1].name if originals else None
        group = [segment, sidecar_of(segment)] + [
            self.directory / name for name in _originals_named(segment) if name not in kept and name != writing
        ]
        freed = 0
        for path in group:
            try:
                freed += path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                pass
        self.removed += 1
        log.info("srstream: %s: removed %s (retention)", self.camera, segment.name)
        return freed
