"""Video fidelity: shrink real 720p footage to 320x180, upscale x4, compare with the real 720p frames.

    python benchmarks/video_fidelity.py ../shared/data/video/vtest.avi --frames 50 --models srresnet-x4,fast-x4,srgan-x4

The shrink is lossless (bicubic, FFV1), so the score measures the models, not a codec. Y-PSNR (BT.601) per model
beside bicubic, as JSON.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from srstream.engine import Upscaler
from srstream.video import Settings, iter_upscaled
from training.evaluate import bicubic_upscale
from training.metrics import psnr_y


def frames_of(path: str, count: int) -> list[np.ndarray]:
    """The first `count` frames of `path` as RGB uint8."""
    out = []
    with av.open(path) as c:
        for frame in c.decode(video=0):
            out.append(frame.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("video", help="real footage, 1280x720")
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--models", default="srresnet-x4,fast-x4,srgan-x4")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        small = str(Path(tmp) / "small.mkv")
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", args.video, "-frames:v", str(args.frames), "-vf",
                        "scale=320:180:flags=bicubic", "-c:v", "ffv1", "-an", small], check=True)
        reference = frames_of(args.video, args.frames)
        lr = frames_of(small, args.frames)
        bicubic = [bicubic_upscale(f, 4) for f in lr]
        result = {"video": args.video, "frames": len(reference), "lr": "320x180", "hr": "1280x720",
                  "bicubic_psnr_y": round(float(np.mean([psnr_y(b, r, 4) for b, r in zip(bicubic, reference)])), 3)}
        for name in args.models.split(","):
            upscaler = Upscaler(name, backend=args.backend)
            sr = [d.rgb for d in iter_upscaled(small, upscaler, Settings(batch=4))]
            scores = [psnr_y(s, r, 4) for s, r in zip(sr, reference)]
            result[name] = {"psnr_y": round(float(np.mean(scores)), 3),
                            "gain_db": round(float(np.mean(scores)) - result["bicubic_psnr_y"], 3),
                            "backend": upscaler.backend_name}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
