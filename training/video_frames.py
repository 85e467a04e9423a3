"""HR clips cut from real video: decoded once, shrunk, cached as uint8, then cropped at random places and times.

A real camera's motion (hand shake, pans, people and cars crossing a still scene, rolling exposure changes) is what
synthetic motion from photos only imitates, so camera training mixes both. Delivered video is itself compressed:
an area shrink by `prescale` (2 by default) before use averages its blocks and noise away, so the HR targets are
cleaner than the footage, as Real-ESRGAN does with its training photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np
import torch

from training.data import files_under
from training.degrade import box_downsample

VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".ts", ".m4v"}


def list_videos(paths: Sequence[str | Path]) -> list[Path]:
    """The video files named, or found under the folders named (recursive), sorted; a path with none is an error."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_file():
            files.append(path)
            continue
        if not path.is_dir():
            raise FileNotFoundError(f"{path}: no such video file or directory")
        files += files_under(path, VIDEO_SUFFIXES, f"video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
    return files


def _shrink(frames: list[np.ndarray], prescale: int) -> np.ndarray:
    """(T, H/prescale, W/prescale, 3) uint8 block means of RGB frames (a partial block at an edge is dropped)."""
    batch = box_downsample(torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float(), prescale)
    return batch.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def load_video(path: str | Path, prescale: int = 2, max_frames: int = 2000) -> np.ndarray:
    """The first `max_frames` frames of a video as (T, H, W, 3) uint8 RGB, area-shrunk by `prescale`."""
    shrunk, pending = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if i == max_frames:
                    break
                pending.append(frame.to_ndarray(format="rgb24"))
                if len(pending) == 64:  # shrink as we go: a full-size decode of a long clip would not fit
                    shrunk.append(_shrink(pending, prescale))
                    pending = []
    except (av.error.FFmpegError, IndexError) as exc:
        raise ValueError(f"{path}: not a readable video ({exc})") from None
    if pending:
        shrunk.append(_shrink(pending, prescale))
    if not shrunk:
        raise ValueError(f"{path}: no video frames in it")
    return np.concatenate(shrunk)


def video_clip(video: np.ndarray, rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
    """(frames, size, size, 3) consecutive frames of `video` (T, H, W, 3), all cropped at one random place."""
    t, h, w = video.shape[:3]
    if t < frames or min(h, w) < size:
        raise ValueError(f"a {t}-frame {w}x{h} video has no {frames}-frame {size}px clip")
    start, top, left = rng.integers(t - frames + 1), rng.integers(h - size + 1), rng.integers(w - size + 1)
    return video[start : start + frames, top : top + size, left : left + size].copy()
