"""A corpus of damaged inputs, made from the real test files: bit flips, truncation, zeroed and duplicated ranges,
wrong extensions and huge declared sizes, for each kind of input the front doors read.

`make(case, workdir)` writes one case's input and returns its path; the cases are named `KIND-DAMAGE`. Every damage
is seeded, so a failing case can be made again by name.
"""
from __future__ import annotations

import random
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from assets import CLIP, DATA, EXAMPLES, GE

# kind -> (front door, how to make the intact input in a folder, its suffix)
KINDS: dict[str, tuple[str, str]] = {
    "mp4": ("srstream", ".mp4"),
    "mkv": ("srstream", ".mkv"),
    "png": ("srstream", ".png"),
    "jpeg": ("srstream", ".jpg"),
    "nifti": ("srmed", ".nii"),
    "dicom_series": ("srmed", ""),
    "enhanced_dicom": ("srmed", ".dcm"),
}
DAMAGES = ("bitflip", "truncate_half", "truncate_header", "zero_range", "duplicate_range", "wrong_extension",
           "huge_size")
CASES = [f"{kind}-{damage}" for kind in KINDS for damage in DAMAGES]
WRONG_SUFFIX = {"mp4": ".png", "mkv": ".jpg", "png": ".mp4", "jpeg": ".mkv", "nifti": ".png",
                "enhanced_dicom": ".nii", "dicom_series": ".mp4"}


def intact(kind: str, folder: Path) -> Path:
    """The undamaged real input of `kind`, written into `folder` (a DICOM series is a folder of files)."""
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "mp4":
        return Path(shutil.copy(CLIP, folder / "clip.mp4"))
    if kind == "mkv":
        return remux(CLIP, folder / "clip.mkv")
    if kind == "png":
        return Path(shutil.copy(EXAMPLES / "foreman.png", folder / "foreman.png"))
    if kind == "jpeg":
        from PIL import Image

        Image.open(DATA / "set5" / "bird.png").convert("RGB").save(folder / "bird.jpg", quality=90)
        return folder / "bird.jpg"
    if kind == "nifti":
        import nibabel as nib

        image = nib.load(DATA / "mri" / "shear_small.nii.gz")
        nib.save(nib.Nifti1Image(image.get_fdata().astype("uint8"), image.affine, image.header), folder / "head.nii")
        return folder / "head.nii"
    if kind == "enhanced_dicom":  # srmed reads DICOM from folders, an enhanced object as a series of its own
        return Path(shutil.copytree(DATA / "dicom" / "enhanced", folder / "enhanced"))
    if kind == "dicom_series":
        return Path(shutil.copytree(GE, folder / "series"))
    raise ValueError(kind)


def remux(src: Path, dst, fmt: str | None = None):
    """`src`'s video and audio packets copied into `dst` (a path or a file object) as `fmt` (default: by name);
    returns `dst`."""
    import av

    with av.open(str(src)) as inp, av.open(dst if not isinstance(dst, Path) else str(dst), "w", format=fmt) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        for packet in inp.demux():
            if packet.stream.index in streams and packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return dst


def make(case: str, workdir: Path) -> Path:
    """Write the damaged input of `case` (KIND-DAMAGE) under `workdir` and return its path."""
    kind, damage = case.split("-", 1)
    path = intact(kind, workdir / case)
    rng = random.Random(case)
    target = _victim(path) if path.is_dir() else path  # a series: one file in the middle of it
    if damage == "wrong_extension":
        if path.is_dir():
            for f in sorted(path.iterdir()):
                f.rename(f.with_suffix(WRONG_SUFFIX[kind]))
            return path
        return path.rename(path.with_suffix(WRONG_SUFFIX[kind]))
    data = bytearray(target.read_bytes())
    target.write_bytes(bytes(BYTE_DAMAGES[damage](data, rng) if damage != "huge_size" else huge(kind, data)))
    return path


def _victim(series: Path) -> Path:
    files = sorted(series.iterdir())
    return files[len(files) // 2]


def _bitflip(data: bytearray, rng: random.Random) -> bytearray:
    for _ in range(max(8, len(data) // 2000)):  # one bit in about every 2 kB, headers included
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return data


def _zero_range(data: bytearray, rng: random.Random) -> bytearray:
    start = rng.randrange(len(data) // 4, len(data) // 2)
    data[start:start + len(data) // 8] = bytes(len(data) // 8)
    return data


def _duplicate_range(data: bytearray, rng: random.Random) -> bytearray:
    start = rng.randrange(0, len(data) // 2)
    piece = data[start:start + len(data) // 6]
    return data[:start] + piece + data[start:]


BYTE_DAMAGES: dict[str, Callable[[bytearray, random.Random], bytearray]] = {
    "bitflip": _bitflip,
    "truncate_half": lambda data, rng: data[:len(data) // 2],
    "truncate_header": lambda data, rng: data[:min(len(data) // 2, 200)],
    "zero_range": _zero_range,
    "duplicate_range": _duplicate_range,
}


def huge(kind: str, data: bytearray) -> bytearray:
    """The same file declaring a size far beyond what it holds (or what any machine could hold)."""
    if kind in ("mp4",):
        i = data.find(b"moov") - 4
        data[i:i + 4] = struct.pack(">I", 0x7FFFFFF0)
    elif kind == "mkv":
        i = data.find(bytes.fromhex("18538067")) + 4  # Segment: an 8-byte size of about 2^56
        data[i:i + 8] = bytes.fromhex("017fffffffffff00")
    elif kind == "png":
        i = data.find(b"IHDR")
        data[i + 4:i + 12] = struct.pack(">II", 100_000, 100_000)
        data[i + 17:i + 21] = struct.pack(">I", zlib.crc32(bytes(data[i:i + 17])))  # a valid chunk
    elif kind == "jpeg":
        i = data.find(b"\xff\xc0")  # baseline frame header: height, width
        data[i + 5:i + 9] = struct.pack(">HH", 65000, 65000)
    elif kind == "nifti":
        data[40:56] = struct.pack("<8h", 3, 30000, 30000, 30000, 1, 1, 1, 1)
    else:  # DICOM: Rows and Columns (0028,0010/0011) of 65535, in explicit or implicit VR little endian
        for tag in (b"\x28\x00\x10\x00", b"\x28\x00\x11\x00"):
            i = data.find(tag) + 8  # the value: after tag, VR and length (explicit) or tag and length (implicit)
            data[i:i + 2] = struct.pack("<H", 65535)
    return data
