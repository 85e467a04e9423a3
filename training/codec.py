"""Real codec compression of short clips: encode RGB frames through PyAV (libx264, libx265) in memory, decode back.

The whole clip is one stream with a real GOP (an I frame, then P and B frames), so inter-frame prediction, motion
compensation and the codec's rate control act as they do on camera footage. Single-threaded and deterministic,
so that a DataLoader worker reproduces a sample exactly.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

import av
import numpy as np

from training.compression import (
    DECODER_OPTIONS,
    Compression,
    from_decoder,
    picture_type,
)

if TYPE_CHECKING:
    from av.video.stream import VideoStream

CODECS = ("libx264", "libx265")
RAW_STREAM = {"libx264": "h264", "libx265": "hevc"}  # each codec's bare elementary stream (FFmpeg format names)
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow")


@dataclass(frozen=True)
class Encoding:
    """How a clip is compressed: codec, constant rate factor, preset, B frames between references, container; a
    `kbps` above 0 replaces the CRF by an average bitrate (ABR, as cameras set it), with the VBV capped at it."""

    codec: str = "libx264"
    crf: int = 28
    preset: str = "medium"
    bframes: int = 2
    container: str = "matroska"
    kbps: int = 0

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"unknown codec {self.codec!r}: use one of {', '.join(CODECS)}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}: use one of {', '.join(PRESETS)}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf {self.crf}: must be 0..51")
        if self.kbps < 0:
            raise ValueError(f"kbps {self.kbps}: must be 0 (CRF) or a bitrate above 0")


def _options(encoding: Encoding, frames: int) -> dict[str, object]:  # str values, typed as PyAV's Stream.options
    """Encoder options for one GOP spanning the clip, one thread, quiet."""
    kbps = encoding.kbps
    if encoding.codec == "libx264":
        rate = (
            {"b": f"{kbps}k", "maxrate": f"{kbps}k", "bufsize": f"{2 * kbps}k"} if kbps else {"crf": str(encoding.crf)}
        )
        return {
            **rate,
            "preset": encoding.preset,
            "bf": str(encoding.bframes),
            "g": str(max(frames, 1)),
            "threads": "1",
            "sc_threshold": "0",
        }
    x265_rate = f"bitrate={kbps}:vbv-maxrate={kbps}:vbv-bufsize={2 * kbps}" if kbps else f"crf={encoding.crf}"
    params = (
        f"{x265_rate}:bframes={encoding.bframes}:keyint={max(frames, 1)}:min-keyint=1:"
        f"scenecut=0:pools=none:frame-threads=1:wpp=0:log-level=none"
    )
    return {"preset": encoding.preset, "x265-params": params}


def encode(frames: np.ndarray, encoding: Encoding, fps: int = 25) -> bytes:
    """The bitstream (in its container) of (T, H, W, 3) uint8 RGB frames encoded as yuv420p; H and W must be even
    (and, for libx265, at least 16)."""
    t, h, w = frames.shape[:3]
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs even frame sides, got {w}x{h}")
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=encoding.container) as output:
        # Encoding admits only video encoders (CODECS), which PyAV's stubs cannot tell from a plain str.
        stream = cast("VideoStream", output.add_stream(encoding.codec, rate=fps))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = _options(encoding, t)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = i
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, list[str]]:
    """Frames (T, H, W, 3) uint8 RGB of an in-memory video, and each frame's picture type ('I', 'P' or 'B')."""
    frames, _, types = _decode(data)
    return frames, types


def decode_with_facts(data: bytes) -> tuple[np.ndarray, list[Compression | None]]:
    """Frames (T, H, W, 3) uint8 RGB of an in-memory video, and what the decoder says of each frame's
    compression (`training.compression`; None where it says nothing: HEVC, say)."""
    frames, facts, _ = _decode(data)
    return frames, facts


def _decode(data: bytes) -> tuple[np.ndarray, list[Compression | None], list[str]]:
    frames, facts, types = [], [], []
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.video[0]
        stream.codec_context.options = dict(DECODER_OPTIONS)
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            facts.append(from_decoder(frame))
            types.append(picture_type(frame))
    return np.stack(frames), facts, types


def compress(frames: np.ndarray, encoding: Encoding, fps: int = 25) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames as they come out of an encode/decode round trip with `encoding`."""
    return compress_with_facts(frames, encoding, fps)[0]


def compress_with_facts(
    frames: np.ndarray, encoding: Encoding, fps: int = 25
) -> tuple[np.ndarray, list[Compression | None]]:
    """`compress`, and the decoder's compression facts of each frame (its QP map, its picture type)."""
    # MP4's muxer refuses some very short libx265 GOPs with B frames (about half of 2-frame 16 px clips, which
    # stopped a training run's data worker), and Matroska's, rarely, too (once in a full test run); each fallback
    # carries the same bitstream, the last one bare (no muxer, no timestamps to refuse), so the frames are the same.
    containers = [encoding.container, *(c for c in ("matroska", RAW_STREAM[encoding.codec]) if c != encoding.container)]
    for i, container in enumerate(containers):
        try:
            data = encode(frames, replace(encoding, container=container), fps)
            break
        except av.error.FFmpegError:
            if i == len(containers) - 1:
                raise
    decoded, facts = decode_with_facts(data)
    if len(decoded) != len(frames):
        raise RuntimeError(f"{encoding.codec} returned {len(decoded)} of {len(frames)} frames")
    return decoded, facts
