"""Training data: random HR crops from folders of photos, augmented, deterministic per sample index.

Sample i of a run with seed s is always the same crop, flip and rotation (its RNG is seeded by (s, i)), so resuming
at step k, or splitting a batch over DDP ranks, draws exactly the samples an uninterrupted single process would.
LR images are made from the HR batch on the fly (see `degrade`), where one matmul serves the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def files_under(folder: Path, suffixes: set[str], what: str) -> list[Path]:
    """The files under `folder` (recursive) with one of `suffixes`, sorted; none is an error naming `what`."""
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes)
    if not found:
        raise FileNotFoundError(f"{folder}: no {what} in it")
    return found


def list_images(folders: list[str | Path]) -> list[Path]:
    """All image files under the given folders (recursive), sorted; a missing or empty folder is an error."""
    files: list[Path] = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such directory of training images")
        files += files_under(folder, IMAGE_SUFFIXES, "PNG/JPEG/WebP images")
    return files


def load_image(path: str | Path, channels: int = 3) -> np.ndarray:
    """An 8-bit image as (H, W, channels) uint8; grey becomes RGB for 3 channels and colour becomes luma for 1."""
    try:
        with Image.open(path) as im:
            converted = im.convert("RGB" if channels == 3 else "L")
            array = np.array(converted, dtype=np.uint8)  # a copy: writable, unlike the decoder's buffer
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from None
    return array if channels == 3 else array[..., None]


class HRCrops(Dataset):
    """HR crops in [0, 1] (C, P, P) with random flips and 90-degree rotations; images cached in memory as uint8."""

    def __init__(
        self,
        folders: list[str | Path],
        patch_size: int = 96,
        channels: int = 3,
        seed: int = 0,
        length: int = 1 << 40,
        progress: bool = False,
    ) -> None:
        self.files = list_images(folders)
        self.patch_size, self.channels, self.seed, self.length = patch_size, channels, seed, length
        files = tqdm(self.files, desc="caching images", disable=not progress, leave=False)
        self.images = [load_image(f, channels) for f in files]
        small = [f for f, im in zip(self.files, self.images) if min(im.shape[:2]) < patch_size]
        if small:
            raise ValueError(f"{small[0]}: smaller than the {patch_size}px training patch")

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, index])
        image = self.images[rng.integers(len(self.images))]
        p = self.patch_size
        top = rng.integers(image.shape[0] - p + 1)
        left = rng.integers(image.shape[1] - p + 1)
        crop = image[top : top + p, left : left + p]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = np.rot90(crop, k=int(rng.integers(4)))
        return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float().div_(255.0)


class StepSampler(Sampler[list[int]]):
    """Yields the sample indices of each step's batch for this rank, starting at `start_step`."""

    def __init__(self, batch_size: int, start_step: int = 0, rank: int = 0, world_size: int = 1) -> None:
        self.batch_size, self.start_step, self.rank, self.world_size = batch_size, start_step, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        while True:
            first = (step * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))
            step += 1

    def __len__(self) -> int:
        return 1 << 40
