"""Which decoders export compression facts through PyAV: a real clip encoded with each codec at a known setting,
decoded with `export_side_data=venc_params`, and what `training.compression.from_decoder` makes of each frame.

    python benchmarks/qp_export.py [--out JSON]

Per codec: the encoder and its setting, the decoder PyAV picked, the frames with side data, whether it gives a map
per block or one value a frame, and the mean QP on H.264's scale (what a model that takes the QP is given).
"""
from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report import emit  # noqa: E402
from training import compression  # noqa: E402

CLIP = ROOT / "tests" / "data" / "video" / "vtest_320x180_2s.mp4"
CODECS = [  # (encoder, its options, what the setting means)
    ("libx264", {"crf": "28"}, "CRF 28"),
    ("libx265", {"crf": "28", "x265-params": "log-level=none"}, "CRF 28"),
    ("mpeg2video", {"bit_rate": "300000"}, "300 kbit/s"),
    ("mpeg4", {"bit_rate": "300000"}, "300 kbit/s"),
    ("libvpx-vp9", {"crf": "35", "b": "0"}, "CRF 35"),
    ("libaom-av1", {"crf": "35", "cpu-used": "8"}, "CRF 35"),
    ("libsvtav1", {"crf": "35"}, "CRF 35"),
]


def frames(count: int = 30) -> list[np.ndarray]:
    with av.open(str(CLIP)) as c:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(count), c.decode(video=0))]


def encode(codec: str, options: dict[str, str], images: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        stream.options = {k: v for k, v in options.items() if k != "bit_rate"}
        if "bit_rate" in options:  # PyAV's own attribute: the codec option "b" is not read
            stream.bit_rate = int(options["bit_rate"])
        for i, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return buffer.getvalue()


def measure(codec: str, options: dict[str, str], setting: str, images: list[np.ndarray]) -> dict:
    row: dict = {"encoder": codec, "setting": setting}
    try:
        data = encode(codec, options, images)
    except (av.error.FFmpegError, ValueError) as exc:  # not built into this FFmpeg
        return {**row, "encoded": False, "why": str(exc).splitlines()[0]}
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = dict(compression.DECODER_OPTIONS)
        decoded = list(container.decode(stream))
        decoder = stream.codec_context.name
    facts = [compression.from_decoder(f) for f in decoded]
    raw = [s for s in map(compression.enc_params, decoded) if s is not None]
    found = [f for f in facts if f is not None]
    return {**row, "encoded": True, "decoder": decoder, "frames": len(decoded), "with_side_data": len(raw),
            "per_block": bool(raw) and all(s.nb_blocks > 0 for s in raw),
            "codec_type": str(raw[0].codec_type) if raw else None,
            "mean_qp_h264_scale": round(float(np.mean([f.mean_qp for f in found])), 2) if found else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "qp_export.json")
    args = parser.parse_args(argv)
    images = frames()
    emit({"benchmark": "qp_export", "pyav": av.__version__, "ffmpeg": av.library_versions.get("libavcodec"),
          "clip": str(CLIP.relative_to(ROOT)), "codecs": [measure(*c, images) for c in CODECS]}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
