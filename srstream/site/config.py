"""A site file (`srstream serve SITE.toml`): the server's settings and every camera, with `[defaults]` that each
camera may override. Read once at start and again on SIGHUP; every problem is one line naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from srstream.redact import redact
from srstream.video.settings import EncodeOptions, Settings
from srstream.video.sink import is_url
from training.errors import SrstreamError
from training.toml_file import read_toml

DEFAULT_METRICS = "127.0.0.1:9108"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)
_POWERS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class SiteConfigError(SrstreamError, ValueError):
    """The site file cannot be used: one line naming the file, the key and the problem."""


@dataclass(frozen=True)
class Camera:
    """One camera: where it comes from, the model, where its upscaled stream goes, and what is kept."""

    name: str
    input: str
    model: str | None = None  # None: the video default
    restream: str | None = None  # rtsp://, rtmp://, udp://, srt://: published for an NVR to read
    record: Path | None = None  # a directory of crash-safe segments NAME_YYYYmmddTHHMMSSZ_000.mp4
    segment_time: float = 60.0
    keep: float | None = None  # seconds: segments older than this go
    keep_bytes: int | None = None  # the recordings of this camera stay under this many bytes
    keep_original: bool = False  # the camera's own stream, stream-copied beside the upscaled segments
    label: bool = False  # a visible "upscaled by srstream MODEL" mark in the corner
    max_latency: float = Settings.max_latency
    timeout: float = Settings.timeout_s
    codec: str = EncodeOptions.codec
    crf: int = EncodeOptions.crf
    preset: str = "veryfast"  # a camera encodes around the clock next to the engine: cheaper than a file's medium

    @property
    def shown_input(self) -> str:
        """The input as logs, metadata and metrics may show it: without credentials."""
        return redact(self.input)


@dataclass(frozen=True)
class Site:
    """The whole file: server settings and cameras by name."""

    path: Path
    metrics: str | None = DEFAULT_METRICS  # HOST:PORT of /metrics and /healthz; None turns them off
    backend: str = "auto"
    precision: str = "auto"
    batch: int = Settings.batch
    cameras: dict[str, Camera] = field(default_factory=dict)


_CAMERA_KEYS = {f.name for f in fields(Camera)} - {"name"}
_SERVER_KEYS = {"metrics", "backend", "precision", "batch"}


def load_site(path: str | Path) -> Site:
    """Read and check a site file; raises SiteConfigError (one line) on anything wrong."""
    path = Path(path)
    data = read_toml(path, SiteConfigError)
    _only(path, "", data, {"server", "defaults", "cameras"})
    server = _table(path, "server", data.get("server", {}))
    _only(path, "server", server, _SERVER_KEYS)
    defaults = _table(path, "defaults", data.get("defaults", {}))
    _only(path, "defaults", defaults, _CAMERA_KEYS - {"input"})
    cameras = _table(path, "cameras", data.get("cameras", {}))
    if not cameras:
        raise SiteConfigError(f"{path}: no cameras (add a [cameras.NAME] table with an input)")
    site = {key: _server_value(path, key, value) for key, value in server.items()}
    return Site(
        path=path, cameras={name: _camera(path, name, defaults, table) for name, table in cameras.items()}, **site
    )


def _camera(path: Path, name: str, defaults: dict, table: Any) -> Camera:
    table = _table(path, f"cameras.{name}", table)
    if not _NAME.match(name):
        raise SiteConfigError(f"{path}: cameras.{name}: a camera's name is letters, digits, '_', '-' and '.'")
    _only(path, f"cameras.{name}", table, _CAMERA_KEYS)
    if "input" not in table:
        raise SiteConfigError(f"{path}: cameras.{name}: no input (the camera's rtsp:// URL or a file)")
    merged = {**defaults, **table}
    values = {key: _camera_value(path, f"cameras.{name}.{key}", key, value) for key, value in merged.items()}
    camera = Camera(name=name, **values)
    if camera.record is None and camera.restream is None:
        raise SiteConfigError(
            f"{path}: cameras.{name}: neither record nor restream: the upscaled stream would go nowhere"
        )
    if camera.keep_original and camera.record is None:
        raise SiteConfigError(f"{path}: cameras.{name}.keep_original: needs record (the original goes beside it)")
    return camera


def _camera_value(path: Path, where: str, key: str, value: Any) -> Any:
    if key in ("input", "model", "codec", "preset"):
        return _of(path, where, value, str)
    if key == "restream":
        url = _of(path, where, value, str)
        if not is_url(url):
            raise SiteConfigError(
                f"{path}: {where}: {redact(url)!r} is not a URL to publish to (rtsp://, rtmp://, udp://, srt://)"
            )
        return url
    if key == "record":
        return path.parent / Path(_of(path, where, value, str)).expanduser()
    if key in ("segment_time", "max_latency", "timeout"):
        seconds = _duration(path, where, value)
        if seconds <= 0:
            raise SiteConfigError(f"{path}: {where}: must be more than 0 seconds")
        return seconds
    if key == "keep":
        return _duration(path, where, value)
    if key == "keep_bytes":
        return _bytes(path, where, value)
    if key in ("keep_original", "label"):
        return _of(path, where, value, bool)
    if key == "crf":
        crf = _of(path, where, value, int)
        if not 0 <= crf <= 51:
            raise SiteConfigError(f"{path}: {where}: {crf} is outside 0-51")
        return crf
    raise AssertionError(key)


def _server_value(path: Path, key: str, value: Any) -> Any:
    where = f"server.{key}"
    if key == "metrics":
        if value is False or value == "":
            return None
        text = _of(path, where, value, str)
        host, _, port = text.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SiteConfigError(f"{path}: {where}: {text!r} is not HOST:PORT (127.0.0.1:9108, say)")
        return text
    if key == "batch":
        batch = _of(path, where, value, int)
        if batch < 1:
            raise SiteConfigError(f"{path}: {where}: must be at least 1")
        return batch
    return _of(path, where, value, str)


def _duration(path: Path, where: str, value: Any) -> float:
    """Seconds from a number or '90s', '15m', '12h', '7d', '2w'."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise SiteConfigError(f"{path}: {where}: {value!r} is not a duration (seconds, or 90s, 15m, 12h, 7d, 2w)")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def _bytes(path: Path, where: str, value: Any) -> int:
    """Bytes from a number or '500M', '50G', '2T' (powers of 1024, as df -h)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _BYTES.match(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise SiteConfigError(f"{path}: {where}: {value!r} is not a size (bytes, or 500M, 50G, 2T)")
    return int(float(match.group(1)) * 1024 ** _POWERS[match.group(2).upper()])


def _of(path: Path, where: str, value: Any, kind: type) -> Any:
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise SiteConfigError(f"{path}: {where}: expected {kind.__name__}, got {redact(repr(value))}")
    return value


def _table(path: Path, where: str, value: Any) -> dict:
    if not isinstance(value, dict):
        raise SiteConfigError(f"{path}: {where}: expected a table ([{where}])")
    return value


def _only(path: Path, where: str, table: dict, known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise SiteConfigError(f"{path}: {prefix}{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
