"""GPU streaming end to end, in one run: engine fps per backend, `srstream upscale` fps on a long 480x270 H.264 clip
to 1920x1080, and the encode-only ceiling (the same clip decoded, scaled with bicubic, encoded with the same
settings), as JSON.

    python benchmarks/gpu_streaming.py --out benchmarks/results/gpu_streaming.json [--frames 1000] [--preset medium]

The clip is made here with PyAV (no ffmpeg CLI needed): the real 720p frames of tests/data/video/vtest_720p_1s.mp4,
scaled to 480x270 and looped to `--frames`. Goal: pipeline_fps >= 0.9 x min(engine_fps, encode_only_fps) per model.
Runs on a CPU too (small --frames), which is how its own code is checked without a GPU.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from engine_throughput import measure, plain_network, real_frames  # noqa: E402
from report import emit  # noqa: E402

from srstream.engine import Upscaler  # noqa: E402
from srstream.models import load_model  # noqa: E402
from srstream.video import EncodeOptions, Settings, upscale_video  # noqa: E402

SOURCE = ROOT / "tests" / "data" / "video" / "vtest_720p_1s.mp4"


def make_clip(path: Path, frames: int, size: tuple[int, int] = (480, 270), source: Path = SOURCE) -> Path:
    """`frames` frames of `source` (looped; its first 29 decode exactly) at `size`, H.264 CRF 18, 25 fps."""
    with av.open(str(source)) as c:
        pictures = [f.reformat(width=size[0], height=size[1], format="yuv420p", interpolation="AREA")
                    for _, f in zip(range(29), c.decode(video=0))]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for i in range(frames):
            frame = pictures[i % len(pictures)]
            frame.pts, frame.time_base = i, Fraction(1, 25)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def encode_only_fps(clip: Path, out: Path, scale: int, options: EncodeOptions) -> float:
    """Decode, scale with swscale's bicubic and encode with the pipeline's settings: the encoder's ceiling."""
    started = time.perf_counter()
    count = 0
    with av.open(str(clip)) as src, av.open(str(out), "w") as dst:
        vin = src.streams.video[0]
        vin.thread_type = "AUTO"
        stream = dst.add_stream(options.codec, rate=vin.average_rate)
        stream.width, stream.height = vin.codec_context.width * scale, vin.codec_context.height * scale
        stream.pix_fmt = "yuv420p"
        stream.time_base = vin.time_base
        stream.options = {"crf": str(options.crf), "preset": options.preset}
        for frame in src.decode(video=0):
            big = frame.reformat(width=stream.width, height=stream.height, format="yuv420p",
                                 interpolation="BICUBIC")
            big.pts, big.time_base = frame.pts, frame.time_base
            for packet in stream.encode(big):
                dst.mux(packet)
            count += 1
        for packet in stream.encode(None):
            dst.mux(packet)
    return count / (time.perf_counter() - started)


def engine_runs(model: str, batch: int, seconds: float, device: str, tensorrt: bool) -> list[dict]:
    """fps of each backend on real 480x270 frames, batch `batch`: eager fp32, fp16, fp16 + CUDA graphs,
    + torch.compile, TensorRT (where it imports)."""
    spec = load_model(model)
    frames = real_frames(SOURCE, batch, 480, 270, spec.channels)
    runs = [("eager-fp32", None)]
    if device == "cuda":
        runs += [("cuda-fp16", dict(backend="cuda", graphs=False)),
                 ("cuda-fp16-graphs", dict(backend="cuda")),
                 ("cuda-fp16-graphs-compile", dict(backend="cuda", compile=True))]
        if tensorrt:
            runs.append(("tensorrt", dict(backend="tensorrt")))
    else:
        runs.append(("cpu-default", dict(backend="cpu")))
    results = []
    for label, options in runs:
        started = time.perf_counter()
        try:
            if options is None:
                fn, dev = plain_network(spec, device), torch.device(device)
            else:
                upscaler = Upscaler(spec, tile=0, batch_size=batch, **options)
                fn, dev = upscaler.upscale_tensor, upscaler.device
            x = frames.to(dev)
            r = measure(fn, x, dev, seconds)
            r.update(backend=label, warmup_s=round(time.perf_counter() - started - r["seconds"], 1))
        except Exception as exc:  # noqa: BLE001 - one backend failing (TensorRT-RTX on Hopper) is a result, not the end
            r = {"backend": label, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
        results.append(r)
        print(json.dumps(r), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="fast-x4,srresnet-x4")
    parser.add_argument("--frames", type=int, default=1000, help="length of the 480x270 clip")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0, help="timed seconds per engine run")
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--preset", default="medium", help="x264 preset for the pipeline and the ceiling")
    parser.add_argument("--crf", type=int, default=18)
    parser.add_argument("--tensorrt", action="store_true", help="also time the tensorrt backend")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    models = [m for m in args.models.split(",") if m]
    options = EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset)
    report = {"gpu": torch.cuda.get_device_name() if device == "cuda" else None,
              "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
              "versions": {"torch": torch.__version__, "av": av.__version__,
                           "ffmpeg": av.library_versions.get("libavcodec")},
              "settings": {"input": "480x270 H.264 (vtest_720p_1s.mp4 frames, looped)", "frames": args.frames,
                           "output": "1920x1080", "batch": args.batch, "codec": args.codec, "preset": args.preset,
                           "crf": args.crf},
              "engine": {}, "engine_fps": {}, "pipeline": {}, "pipeline_fps": {}}
    try:
        import tensorrt_rtx
        report["versions"]["tensorrt_rtx"] = tensorrt_rtx.__version__
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as tmp:
        clip = make_clip(Path(tmp) / "clip_480x270.mp4", args.frames)
        report["encode_only_fps"] = round(encode_only_fps(clip, Path(tmp) / "bicubic.mp4", 4, options), 2)
        print(f"encode only: {report['encode_only_fps']} fps", flush=True)
        for model in models:
            runs = engine_runs(model, args.batch, args.seconds, device, args.tensorrt)
            report["engine"][model] = runs
            report["engine_fps"][model] = max((r["fps"] for r in runs if "fps" in r), default=None)
            upscaler = Upscaler(model, batch_size=args.batch)
            stats = upscale_video(str(clip), Path(tmp) / f"{model}.mp4", upscaler,
                                  Settings(options=options, batch=args.batch), overwrite=True, progress=False)
            report["pipeline"][model] = {"backend": f"{stats.backend} {stats.precision}", "frames": stats.frames_out,
                                         "seconds": stats.seconds, "fps": stats.fps}
            report["pipeline_fps"][model] = stats.fps
            bound = min(report["engine_fps"][model] or 0, report["encode_only_fps"])
            report["pipeline"][model]["of_bound"] = round(stats.fps / bound, 3) if bound else None
            print(json.dumps({model: report["pipeline"][model]}), flush=True)
    emit(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
