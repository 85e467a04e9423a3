"""Rebuild the benchmark's clips (benchmarks/footage_clips.toml) as ../data/bench-video/<group>/<name>.mkv from
public git snapshots (bare repositories under $MIRROR, default /work/.mirror, each at the commit listed below).

Each clip: the first 32 decoded frames (all if fewer), native resolution, cropped top-left so both sides divide by 8,
converted to RGB with the source's own matrix and range (srstream.video.colour: BT.709 from 720 lines up when
untagged, else 601; yuvj = full range), and stored lossless as FFV1 (pix_fmt bgr0) in Matroska.
Run:  .venv/bin/python benchmarks/make_footage_clips.py [name ...]
"""
import glob
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from srstream.video.colour import colour_of, to_rgb  # noqa: E402

MIRROR = Path(os.environ.get("MIRROR", "/work/.mirror"))
OUT = ROOT.parent / "data" / "bench-video"
FRAMES = 32
REPO = {  # group -> (owner/name, bare git dir, commit)
    "intel": ("intel-iot-devkit/sample-videos", "intel-iot-devkit+sample-videos/repo",
             "57978890822836f2b4743852f04f62fc511757e4"),
    "vid4": ("yhjo09/VSR-DUF", "yhjo09+VSR-DUF/repo", "f6b3c92b4fb746e9072953df4876168b1a83e449"),
    "udacity": ("udacity/CarND-LaneLines-P1", "udacity+CarND-LaneLines-P1/repo",
               "ce5681be7ef8140560c0e464ef2da611e40b4fc9"),
    "sam2": ("facebookresearch/sam2", "facebookresearch+sam2/repo", "2b90b9f5ceec907a1c18123530e92e794ad901a4"),
    "imageio": ("imageio/imageio-binaries", "imageio+imageio-binaries/repo",
               "f8f64710ea88e7e4a352c0f7d8c0deac9f5fd685"),
    "mmaction2": ("open-mmlab/mmaction2", "open-mmlab+mmaction2/repo", "4d6c93474730cad2f25e51109adcf96824efc7a3"),
    "realbasicvsr": ("ckkelvinchan/RealBasicVSR", "ckkelvinchan+RealBasicVSR/repo",
                    "b908e08323c84e96b08f0d58621026ab27f56bcb"),
    "rfmanz": ("rfmanz/surveillance", "rfmanz+surveillance/repo", "3f54ebfa30f9133a4844035f0fef438d58ce97d6"),
}
CLIPS = [  # (group, name, path in repo: a video file, or a folder of PNG frames)
    ("intel", "asl-hungry", "asl_gestures/hungry.mkv"),
    ("intel", "asl-sister", "asl_gestures/sister.mkv"),
    ("vid4", "calendar", "inputs/G/calendar"),
    ("vid4", "city", "inputs/G/city"),
    ("vid4", "foliage", "inputs/G/foliage"),
    ("vid4", "walk", "inputs/G/walk"),
    ("udacity", "solid-white-right", "test_videos/solidWhiteRight.mp4"),
    ("sam2", "bedroom", "notebooks/videos/bedroom.mp4"),
    ("sam2", "dog", "demo/data/gallery/01_dog.mp4"),
    ("sam2", "blocks", "demo/data/gallery/03_blocks.mp4"),
    ("sam2", "juggle", "demo/data/gallery/05_default_juggle.mp4"),
    ("imageio", "cockatoo", "images/cockatoo.mp4"),
    ("mmaction2", "kinetics-arm-wrestling", "demo/demo.mp4"),
    ("mmaction2", "ntu-s001c001", "tools/data/skeleton/S001C001P001R001A001_rgb.avi"),
    ("realbasicvsr", "videolq-demo000", "data/demo_000"),
    ("rfmanz", "night-ir-camera", "night.mp4"),
]
PNG_FPS = Fraction(25)  # frame folders carry no rate; 25 for Vid4 and VideoLQ's demo


def git(group, *args):
    _, gitdir, _ = REPO[group]
    return subprocess.run(["git", f"--git-dir={MIRROR / gitdir}", *args], check=True, capture_output=True).stdout


def source_frames(group, path, tmp):
    """(list of RGB uint8 arrays, fps, first av.VideoFrame or None) for the first FRAMES frames."""
    commit = REPO[group][2]
    kind = git(group, "cat-file", "-t", f"{commit}:{path}").decode().strip()
    if kind == "tree":
        with tarfile.open(fileobj=io.BytesIO(git(group, "archive", commit, path))) as archive:
            archive.extractall(tmp, filter="data")
        files = sorted(glob.glob(f"{tmp}/{path}/*.png"))[:FRAMES]
        return [np.asarray(Image.open(f).convert("RGB")) for f in files], PNG_FPS, None
    local = Path(tmp) / Path(path).name
    local.write_bytes(git(group, "show", f"{commit}:{path}"))
    frames, first = [], None
    with av.open(str(local)) as c:
        stream = c.streams.video[0]
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        for fr in c.decode(stream):
            first = first or fr
            frames.append(to_rgb(fr, colour_of(fr)))
            if len(frames) == FRAMES:
                break
    return frames, fps, (local, first)


def write_ffv1(frames, fps, dest):
    dest.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    with av.open(str(dest), "w", format="matroska") as c:
        s = c.add_stream("ffv1", rate=fps, options={"level": "3", "slicecrc": "1", "g": "1"})
        s.width, s.height, s.pix_fmt = w, h, "bgr0"
        s.thread_count = 1
        for i, a in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
            f.pts = i
            c.mux(s.encode(f.reformat(format="bgr0")))
        c.mux(s.encode())


def main(names):
    for group, name, path in CLIPS:
        if names and name not in names:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            frames, fps, video = source_frames(group, path, tmp)
            if len(frames) < 24:
                print(f"SKIP {name}: {len(frames)} frames")
                continue
            h, w = frames[0].shape[:2]
            if h * w > 1920 * 1080:  # centred 1280x720 for anything above 1080p (none at present)
                y, x = (h - 720) // 2, (w - 1280) // 2
                frames = [f[y:y + 720, x:x + 1280] for f in frames]
            else:
                frames = [f[: h - h % 8, : w - w % 8] for f in frames]
            dest = OUT / group / f"{name}.mkv"
            write_ffv1(frames, fps, dest)
            # check: the mkv decodes to exactly the RGB frames written; and frame 0 vs a plain BT.601 decode
            with av.open(str(dest)) as c:
                back = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
            exact = len(back) == len(frames) and all(np.array_equal(a, b) for a, b in zip(back, frames))
            note = ""
            if video is not None:
                plain = video[1].to_ndarray(format="rgb24")[: back[0].shape[0], : back[0].shape[1]]
                d = np.abs(plain.astype(int) - back[0].astype(int))
                note = f" vs plain rgb24 decode: mean|d|={d.mean():.2f} max={d.max()}"
            Image.fromarray(back[0]).save(f"/tmp/clip_frames/{group}__{name}.png")
            print(f"{group}/{name}: {back[0].shape[1]}x{back[0].shape[0]} n={len(back)} fps={float(fps):.3f} "
                  f"lossless={exact}{note} {dest.stat().st_size/1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
