"""Training pairs for the camera degradation: HR clips from still photos (synthetic camera motion) and from real
video (its own motion), and their LR clips through blur, noise, JPEG and a real codec, made in the DataLoader workers.

Sample i of a run with seed s is always the same clip and degradation (its RNG is seeded by (s, i)), as HRCrops
guarantees for single crops, so a resumed run draws the same data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from training.camera_clips import camera_clip, flip_and_turn
from training.camera_degrade import CameraSettings, degrade_clip, degrade_clip_with_qp
from training.compression import qp_plane
from training.data import list_images, load_image
from training.video_frames import list_videos, load_video, video_clip


class CameraClips(Dataset):
    """(HR, LR) clip pairs in [0, 1]: (T, 3, P, P) and (T, 3, P/scale, P/scale); photos and videos cached as uint8.

    With `videos`, a sample is a real clip with probability `video_p`, else a photo under synthetic motion. With
    `qp_plane`, each LR frame has a fourth channel: the decoder's QP map / 51 over its pixels (a model that takes
    the QP learns from what the codec really did to that clip); with `qp_average` too, every frame gets the clip's
    mean map, as the video front door averages a stream's QP over its frames (training.compression.QpAverage).
    """

    def __init__(
        self,
        folders: list[str | Path],
        patch_size: int,
        scale: int,
        settings: CameraSettings,
        seed: int = 0,
        length: int = 1 << 40,
        progress: bool = False,
        videos: Sequence[str | Path] = (),
        video_p: float = 0.5,
        video_prescale: int = 2,
        qp_plane: bool = False,
        qp_average: bool = False,
    ) -> None:
        self.files = list_images(folders)
        self.patch_size, self.scale, self.settings, self.seed, self.length = (patch_size, scale, settings, seed, length)
        self.qp_plane, self.qp_average = qp_plane, qp_average
        files = tqdm(self.files, desc="caching images", disable=not progress, leave=False)
        self.images = [load_image(f, 3) for f in files]
        small = [f for f, im in zip(self.files, self.images) if min(im.shape[:2]) < patch_size]
        if small:
            raise ValueError(f"{small[0]}: smaller than the {patch_size}px training patch")
        self.video_files = list_videos(videos) if videos else []
        self.video_p = video_p if self.video_files else 0.0
        clips = tqdm(self.video_files, desc="decoding videos", disable=not progress, leave=False)
        self.videos = [load_video(f, video_prescale) for f in clips]
        for f, video in zip(self.video_files, self.videos):
            if len(video) < settings.frames or min(video.shape[1:3]) < patch_size:
                raise ValueError(
                    f"{f}: {len(video)} frames of {video.shape[2]}x{video.shape[1]} after the "
                    f"x{video_prescale} shrink, too few or too small for {settings.frames}-frame "
                    f"{patch_size}px clips"
                )
        degrade_clip(
            np.zeros((2, patch_size, patch_size, 3), np.uint8),
            np.random.default_rng(0),
            CameraSettings(codec_p=0.0),
            scale,
        )  # wrong sizes fail here, not in a worker

    def __len__(self) -> int:
        return self.length

    def clip(self, index: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Sample `index` as uint8 HR and LR clips (T, H, W, 3) and the degradation steps applied."""
        hr, lr, _, log = self.clip_with_qp(index)
        return hr, lr, log

    def clip_with_qp(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """`clip`, with the LR frames' QP maps (T, h/16, w/16)."""
        rng = np.random.default_rng([self.seed, index])
        s = self.settings
        if self.video_p and rng.random() < self.video_p:
            which = int(rng.integers(len(self.videos)))
            hr = video_clip(self.videos[which], rng, s.frames, self.patch_size)
            motion = f"real ({self.video_files[which].name})"
        else:
            image = self.images[rng.integers(len(self.images))]
            motion = s.motions[rng.integers(len(s.motions))]
            hr = camera_clip(image, rng, s.frames, self.patch_size, motion, s.speed, s.zoom, s.degrees)
        hr = flip_and_turn(hr, rng)
        lr, qp, log = degrade_clip_with_qp(hr, rng, s, self.scale)
        return hr, lr, qp, [f"motion {motion}", *log]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        hr, lr, qp, _ = self.clip_with_qp(index)
        as_float = lambda c: torch.from_numpy(c).permute(0, 3, 1, 2).float().div_(255.0)  # noqa: E731
        low = as_float(lr)
        if self.qp_plane:
            if self.qp_average:
                qp = np.broadcast_to(qp.mean(axis=0), qp.shape)
            planes = np.stack([qp_plane(q, *lr.shape[1:3]) for q in qp])
            low = torch.cat([low, torch.from_numpy(planes)[:, None]], dim=1)
        return as_float(hr), low
