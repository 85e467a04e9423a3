"""Still images in and out (PNG/JPEG/TIFF/BMP/WebP, 8-bit, and 16-bit grey), written atomically."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


class ImageError(ValueError):
    """An image cannot be read or written."""


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, C) uint8 for 8-bit images (C = 1, 3 or 4), or (H, W, 1) uint16 for 16-bit grey."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(im, dtype=np.uint16 if im.mode.startswith("I;16") else np.int32)
                array = array.clip(0, 65535).astype(np.uint16)
            elif im.mode in ("L", "RGB", "RGBA"):
                array = np.asarray(im)
            else:
                array = np.asarray(im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    return array[..., None] if array.ndim == 2 else array


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write (H, W, C) uint8 or (H, W, 1) uint16 to `path` by way of a temporary file, so no partial file remains."""
    path = Path(path)
    if image.dtype == np.uint16 and image.shape[-1] != 1:
        raise ImageError(f"{path}: 16-bit colour output is not supported; write 8-bit or grey")
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    suffix = path.suffix.lower()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=suffix)
    os.close(fd)
    try:
        pil.save(tmp, format=Image.registered_extensions().get(suffix, "PNG"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
