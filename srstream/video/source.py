"""Video inputs: files, image-sequence patterns and RTSP URLs, opened with PyAV with clear one-line errors."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import av

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".ts", ".m2ts", ".webm", ".m4v", ".mts", ".flv"}
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "srt://", "udp://", "http://", "https://")


class VideoInputError(ValueError):
    """An input cannot be opened or decoded."""


@dataclass(frozen=True)
class InputKind:
    kind: str  # "file", "sequence" or "stream"
    target: str


def classify(source: str) -> InputKind:
    """A URL is a stream, a printf pattern (frame_%04d.png) a sequence, anything else a file."""
    if source.startswith(STREAM_SCHEMES):
        return InputKind("stream", source)
    if re.search(r"%0?\d*d", source):
        return InputKind("sequence", source)
    return InputKind("file", source)


def is_video_input(source: str) -> bool:
    """True for what the video path handles (URL, sequence pattern, video file suffix)."""
    kind = classify(source)
    return kind.kind != "file" or Path(source).suffix.lower() in VIDEO_SUFFIXES


def open_input(source: str, timeout_s: float = 10.0, framerate: str = "25") -> av.container.InputContainer:
    """Open `source` for demuxing; RTSP goes over TCP with connect/read timeouts."""
    kind = classify(source)
    options: dict[str, str] = {}
    fmt = None
    if kind.kind == "stream":
        micro = str(int(timeout_s * 1e6))
        options = {"rw_timeout": micro}
        if source.startswith(("rtsp://", "rtsps://")):
            options.update(rtsp_transport="tcp", timeout=micro)
    elif kind.kind == "sequence":
        fmt, options = "image2", {"framerate": framerate}
    else:
        path = Path(source)
        if not path.exists():
            raise VideoInputError(f"{source}: no such file")
        if path.is_dir():
            raise VideoInputError(f"{source}: is a directory, not a video")
        if path.stat().st_size == 0:
            raise VideoInputError(f"{source}: empty file (0 bytes)")
    try:
        container = av.open(source, mode="r", format=fmt, options=options, timeout=timeout_s)
    except av.error.FFmpegError as exc:
        raise VideoInputError(f"{source}: cannot open ({_reason(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoInputError(f"{source}: has no video stream")
    stream = container.streams.video[0]
    if stream.codec_context is None or not stream.codec_context.name:
        container.close()
        raise VideoInputError(f"{source}: video codec is not supported by this FFmpeg build")
    return container


def _reason(exc: av.error.FFmpegError) -> str:
    return getattr(exc, "strerror", None) or str(exc)
