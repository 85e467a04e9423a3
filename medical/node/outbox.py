"""The on-disk send queue: each derived series waits in `outbox`/<job>/ until its destination has taken it all,
retried with a growing delay; a restart picks it up where it was (nothing lives only in memory)."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from medical.node.receiver import sync_folder
from training.atomic import atomic_path

STATE = "state.json"  # attempts, next try, last error: beside the job's files


@dataclass
class Delivery:
    """A derived series to send: its folder, its instances, how often it failed and when to try again."""

    folder: Path
    attempts: int = 0
    next_try: float = 0.0
    last_error: str = ""

    @property
    def files(self) -> list[Path]:
        return sorted(self.folder.glob("*.dcm"))


class Outbox:
    """Deliveries under `root` (one folder each, named after the node's job), tried oldest first; after a failure
    the delay doubles from `retry_seconds` up to `max_retry_seconds`, and a delivery is never dropped."""

    def __init__(self, root: Path, retry_seconds: float = 10, max_retry_seconds: float = 600) -> None:
        self.root, self.retry_seconds, self.max_retry_seconds = root, retry_seconds, max_retry_seconds
        root.mkdir(parents=True, exist_ok=True)
        for leftover in root.glob(".*"):  # a job half-queued or half-removed when the node stopped
            shutil.rmtree(leftover, ignore_errors=True)

    def put(self, series: Path, name: str) -> Delivery:
        """Queue the derived series in the folder `series` (moved, not copied: same disk)."""
        staging = self.root / f".{name}"
        shutil.rmtree(staging, ignore_errors=True)
        if series.stat().st_dev == self.root.stat().st_dev:
            os.replace(series, staging)
        else:
            shutil.copytree(series, staging)
        for path in staging.iterdir():  # the writer renamed them into place; make them durable before queuing
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        sync_folder(staging)
        target = self.root / name
        os.replace(staging, target)  # a job folder without its dot is whole
        sync_folder(self.root)
        return Delivery(target)

    def deliveries(self) -> list[Delivery]:
        """Every queued delivery (oldest first), with its retry state."""
        found = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            job = Delivery(folder)
            try:
                state = json.loads((folder / STATE).read_text())
                job.attempts, job.next_try, job.last_error = state["attempts"], state["next_try"], state["error"]
            except (OSError, ValueError, KeyError):
                pass  # never tried, or a state lost in a crash: try it now
            found.append(job)
        return found

    def due(self, now: float | None = None) -> list[Delivery]:
        """The jobs whose next try has come."""
        now = time.time() if now is None else now
        return [d for d in self.deliveries() if d.next_try <= now]

    def failed(self, job: Delivery, error: str) -> float:
        """Note a failed try; the seconds until the next."""
        job.attempts += 1
        delay = min(self.max_retry_seconds, self.retry_seconds * 2 ** (job.attempts - 1))
        job.next_try, job.last_error = time.time() + delay, error
        with atomic_path(job.folder / STATE, suffix=".json") as tmp:
            Path(tmp).write_text(json.dumps({"attempts": job.attempts, "next_try": job.next_try, "error": error}))
        return delay

    def delivered(self, job: Delivery) -> None:
        """Remove a job its destination has taken (renamed away first, so a crash mid-removal cannot resend
        half a series as a job)."""
        gone = self.root / f".sent-{job.folder.name}"
        os.replace(job.folder, gone)
        shutil.rmtree(gone, ignore_errors=True)
