"""How each recorded segment was made, kept where it cannot be separated from it and checked by anyone: the
container's metadata and a sidecar JSON beside the segment name srstream's version, the model and the sha256 of its
weights, the settings, the camera (its URL without credentials), the time span, and the sha256 of the segment and
of the camera's original segments beside it. `verify` recomputes all of it (`srstream verify SEGMENT`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import av

from srstream import __version__
from srstream.redact import redact
from training.atomic import atomic_path

FORMAT = "srstream-provenance/1"
METADATA_KEY = "srstream"  # the container tag holding the provenance JSON


@dataclass(frozen=True)
class Provenance:
    """What every segment of one camera's run shares."""

    camera: str
    input: str  # without credentials
    model: str
    weights_sha256: str | None  # None for a model whose file is not on disk (a tuned one in memory)
    settings: dict
    srstream: str = __version__

    def metadata(self) -> dict[str, str]:
        """Container tags: a line a person reads (`comment`) and the whole record for `verify`."""
        weights = f"weights sha256 {self.weights_sha256}" if self.weights_sha256 else "weights not on file"
        return {
            "comment": f"upscaled by srstream {self.srstream} with {self.model} ({weights})",
            METADATA_KEY: json.dumps(asdict(self), sort_keys=True),
        }


def of_run(camera: str, source: str, model: str, weights_sha256: str | None, settings: dict) -> Provenance:
    """The provenance of a camera's run, the input's credentials removed."""
    return Provenance(
        camera=camera,
        input=redact(source),
        model=model,
        weights_sha256=weights_sha256,
        settings=json.loads(redact(json.dumps(settings, sort_keys=True))),
    )


def sha256_of(path: Path) -> str:
    """The file's sha256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_of(segment: Path) -> Path:
    """lobby_20261207T041500Z_000.mp4 -> lobby_20261207T041500Z_000.mp4.json"""
    return segment.with_name(segment.name + ".json")


def write_sidecar(
    segment: Path,
    provenance: Provenance,
    start: datetime,
    end: datetime,
    originals: list[Path],
    note: str | None = None,
) -> Path:
    """Write the segment's sidecar (atomically: a reader never sees half of one); `note` says how it came to be
    written late (a segment recovered after its writer stopped)."""
    record = {
        "format": FORMAT,
        **asdict(provenance),
        "segment": segment.name,
        "sha256": sha256_of(segment),
        "start": _iso(start),
        "end": _iso(end),
        "originals": [{"segment": p.name, "sha256": sha256_of(p)} for p in originals],
    }
    if note:
        record["note"] = note
    sidecar = sidecar_of(segment)
    with atomic_path(sidecar) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return sidecar


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Verdict:
    """What `verify` found for one segment: each check with whether it holds and what it saw."""

    segment: Path
    checks: list[tuple[str, bool, str]]
    model: str | None = None
    weights_sha256: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)


def verify(segment: Path, weights: Path | None = None) -> Verdict:
    """Recompute a segment's provenance: its sidecar, its hash, the metadata inside it, its originals' hashes and,
    where the model's weights are here (`weights`, else the shipped model of that name), their hash."""
    verdict = Verdict(segment, [])
    if not segment.is_file():
        verdict.checks.append(("segment", False, "no such file"))
        return verdict
    try:
        record = json.loads(sidecar_of(segment).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        verdict.checks.append(("sidecar", False, f"{sidecar_of(segment).name}: unreadable ({exc})"))
        return verdict
    verdict.model, verdict.weights_sha256 = record.get("model"), record.get("weights_sha256")
    checks = verdict.checks
    checks.append(("sidecar", record.get("format") == FORMAT, f"format {record.get('format')}"))
    actual = sha256_of(segment)
    checks.append(("segment sha256", actual == record.get("sha256"), actual))
    checks.append(_metadata_check(segment, record))
    for original in record.get("originals", []):
        path = segment.parent / original["segment"]
        found = sha256_of(path) if path.is_file() else "missing"
        checks.append((f"original {original['segment']}", found == original["sha256"], found))
    checks.append(_weights_check(record, weights))
    return verdict


def inside(segment: Path) -> Provenance | None:
    """The provenance a segment's container holds, None where it holds none or cannot be opened."""
    try:
        with av.open(str(segment)) as container:
            record = json.loads(container.metadata.get(METADATA_KEY, "null"))
        return Provenance(**record) if record else None
    except (av.error.FFmpegError, OSError, ValueError, TypeError):
        return None


def _metadata_check(segment: Path, record: dict) -> tuple[str, bool, str]:
    """The provenance inside the container equals the sidecar's."""
    try:
        with av.open(str(segment)) as container:
            inside = json.loads(container.metadata.get(METADATA_KEY, "null"))
    except (av.error.FFmpegError, ValueError) as exc:
        return "metadata", False, f"unreadable ({exc})"
    if inside is None:
        return "metadata", False, "the container holds no srstream provenance"
    differs = sorted(k for k, v in inside.items() if record.get(k) != v)
    return "metadata", not differs, "matches the sidecar" if not differs else f"differs in {', '.join(differs)}"


def _weights_check(record: dict, weights: Path | None) -> tuple[str, bool, str]:
    """The weights named are the weights used: their file here hashes to what the segment says."""
    from training.weights import ModelLoadError, resolve_model_path

    recorded = record.get("weights_sha256")
    try:
        path = weights or resolve_model_path(record.get("model", ""))
    except (ModelLoadError, OSError, ValueError):
        return "weights", False, f"model {record.get('model')} is not here (pass --weights FILE)"
    if not path.is_file():
        return "weights", False, f"{path}: no such file (pass --weights FILE)"
    found = sha256_of(path)
    return "weights", found == recorded, f"{path.name} sha256 {found}"
