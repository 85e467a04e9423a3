"""Training pairs for the camera degradation: HR clips from still photos (synthetic camera motion) and their LR
clips through blur, noise, JPEG and a real codec, made in the DataLoader workers.

Sample i of a run with seed s is always the same clip and degradation (its RNG is seeded by (s, i)), as HRCrops
guarantees for single crops, so a resumed run draws the same data.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from training.camera_clips import camera_clip
from training.camera_degrade import CameraSettings, degrade_clip
from training.data import list_images, load_image


class CameraClips(Dataset):
    """(HR, LR) clip pairs in [0, 1]: (T, 3, P, P) and (T, 3, P/scale, P/scale); RGB photos cached as uint8."""

    def __init__(self, folders: list[str | Path], patch_size: int, scale: int, settings: CameraSettings,
                 seed: int = 0, length: int = 1 << 40, progress: bool = False) -> None:
        self.files = list_images(folders)
        self.patch_size, self.scale, self.settings, self.seed, self.length = (patch_size, scale, settings, seed,
                                                                              length)
        files = tqdm(self.files, desc="caching images", disable=not progress, leave=False)
        self.images = [load_image(f, 3) for f in files]
        small = [f for f, im in zip(self.files, self.images) if min(im.shape[:2]) < patch_size]
        if small:
            raise ValueError(f"{small[0]}: smaller than the {patch_size}px training patch")
        degrade_clip(np.zeros((2, patch_size, patch_size, 3), np.uint8), np.random.default_rng(0),
                     CameraSettings(codec_p=0.0), scale)  # wrong sizes fail here, not in a worker

    def __len__(self) -> int:
        return self.length

    def clip(self, index: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Sample `index` as uint8 HR and LR clips (T, H, W, 3) and the degradation steps applied."""
        rng = np.random.default_rng([self.seed, index])
        image = self.images[rng.integers(len(self.images))]
        s = self.settings
        motion = s.motions[rng.integers(len(s.motions))]
        hr = camera_clip(image, rng, s.frames, self.patch_size, motion, s.speed, s.zoom, s.degrees)
        if rng.random() < 0.5:
            hr = hr[:, :, ::-1]
        hr = np.ascontiguousarray(np.rot90(hr, k=int(rng.integers(4)), axes=(1, 2)))
        lr, log = degrade_clip(hr, rng, s, self.scale)
        return hr, lr, [f"motion {motion}", *log]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        hr, lr, _ = self.clip(index)
        as_float = lambda c: torch.from_numpy(c).permute(0, 3, 1, 2).float().div_(255.0)  # noqa: E731
        return as_float(hr), as_float(lr)
