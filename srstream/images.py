"""Still images in and out: PNG/JPEG/TIFF/BMP/WebP, 8 and 16 bit, grey, RGB and RGBA, written atomically.

Pillow reads 8-bit images; 16-bit colour PNG goes through pypng and TIFF through tifffile, because Pillow would
silently drop 16-bit colour to 8 bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from training.atomic import atomic_path
from training.errors import SrstreamError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


class ImageError(SrstreamError, ValueError):
    """An image cannot be read or written."""


def _read_png16(path: Path) -> np.ndarray:
    import png

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    return np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)


def _png_bitdepth(path: Path) -> int:
    with open(path, "rb") as f:
        head = f.read(26)
    return head[24] if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) == 26 else 8


def read_image(path: str | Path) -> np.ndarray:
    """(H, W, C) with C in 1, 3, 4; uint8 for 8-bit images, uint16 for 16-bit ones."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            array = tifffile.imread(path)
            if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
                array = np.moveaxis(array, 0, -1)  # planar TIFF
        elif suffix == ".png" and _png_bitdepth(path) == 16:
            array = _read_png16(path)
        else:
            with Image.open(path) as im:
                im.load()
                if im.mode in ("L", "RGB", "RGBA"):
                    array = np.asarray(im)
                elif im.mode.startswith("I"):
                    array = np.asarray(im).clip(0, 65535).astype(np.uint16)
                else:
                    array = np.asarray(im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB"))
    except (UnidentifiedImageError, OSError, ValueError, Exception) as exc:  # noqa: BLE001 - every decoder has its own errors
        raise ImageError(f"{path}: not a readable image ({exc.__class__.__name__})") from None
    if array.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{path}: {array.dtype} pixels are not supported (8- or 16-bit integers only)")
    array = array[..., None] if array.ndim == 2 else array
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageError(f"{path}: unsupported image layout {array.shape}")
    return np.require(array, requirements=["C_CONTIGUOUS", "WRITEABLE"])  # the decoders' buffers are read-only


def _write(path: str, image: np.ndarray, suffix: str) -> None:
    if suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, image[..., 0] if image.shape[-1] == 1 else image)
    elif image.dtype == np.uint16 and suffix == ".png":
        import png

        h, w, c = image.shape
        writer = png.Writer(w, h, greyscale=c == 1, alpha=c == 4, bitdepth=16)
        with open(path, "wb") as f:
            writer.write(f, image.reshape(h, w * c))
    elif image.dtype == np.uint16:
        raise ImageError(f"{path}: 16-bit output needs .png or .tif")
    else:
        if suffix in (".jpg", ".jpeg") and image.shape[-1] == 4:
            image = image[..., :3]  # JPEG has no alpha
        pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        pil.save(path, format=Image.registered_extensions().get(suffix, "PNG"))


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write (H, W, C) uint8/uint16 to `path` through a temporary file, so no partial file is left behind."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ImageError(f"{path}: unknown image type (use one of {', '.join(sorted(IMAGE_SUFFIXES))})")
    with atomic_path(path, suffix=suffix) as tmp:
        _write(tmp, image, suffix)
