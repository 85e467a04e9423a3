"""`srstream`'s commands: upscale images, video files, image sequences and RTSP streams; `srstream models` lists the
models. `srstream.cli` is the entry point that runs them."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from tqdm import tqdm

from srstream import __version__, defaults
from srstream.backends.precision import PRECISIONS
from srstream.engine import BACKENDS, EngineError, Upscaler
from srstream.images import IMAGE_SUFFIXES, ImageError, read_image, write_image
from srstream.output_size import from_options
from srstream.redact import redact, redact_logging
from srstream.site.commands import add_site_commands
from srstream.video.settings import EncodeOptions, Settings
from training.errors import SrstreamError
from training.logs import log_to_stderr
from training.weights import shipped_models


def _jobs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    if src.is_dir():
        files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ImageError(f"{src}: no images in this directory")
        if dst.exists() and not dst.is_dir():
            raise ImageError(f"{dst}: input is a directory, so the output must be one too")
        return [(f, dst / f"{f.stem}.png") for f in files]
    if not src.exists():
        raise ImageError(f"{src}: no such file or directory")
    if src.suffix.lower() not in IMAGE_SUFFIXES:
        raise ImageError(f"{src}: not an image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [(src, dst)]


def _upscaler(args: argparse.Namespace, batch: int) -> Upscaler:
    upscaler = Upscaler(
        args.model, backend=args.backend, tile=args.tile, batch_size=batch, tta=args.tta, precision=args.precision
    )
    if args.scale and args.scale != upscaler.scale:
        raise EngineError(f"--scale {args.scale} does not match model {upscaler.spec.name} (x{upscaler.scale})")
    return upscaler


def _asked_factor(args: argparse.Namespace, first_input: str) -> float | None:
    """The upscaling factor a video's output size asks for (--outscale, or --size against the first input's size),
    or None where it asks for none (or the input's size cannot be known before it is opened: a network stream)."""
    size = from_options(args.outscale, args.size)
    if size.outscale is not None:
        return size.outscale
    if size.width is None and size.height is None:
        return None
    from srstream.video.source import classify, probe_size

    if classify(first_input).network:
        return None
    width, height = probe_size(first_input)
    out_w, out_h = size.resolve(width, height, defaults.SCALE)
    return max(out_w / width, out_h / height)


def _choose_model(args: argparse.Namespace, video: bool, first_input: str = "") -> None:
    """Without -m, the default for images, or for video at the scale the output size asks for (x2 where it asks
    at most 2x and x2 figures are shipped; images stay with the x4 default, which no x2 model was measured
    against), noted in the log line."""
    args.model_note = ""
    if not args.model:
        accelerator = defaults.on_accelerator(args.backend, args.precision)
        factor = _asked_factor(args, first_input) if first_input and video else None
        scale = 2 if factor is not None and factor <= 2 and defaults.has_scale(2) else defaults.SCALE
        if video:
            args.model = defaults.video_model(args.backend, args.precision, scale)
        else:
            args.model = defaults.image_model(scale)
        args.model_note = f" ({defaults.why(args.model, video, accelerator, scale)})"


def cmd_upscale(args: argparse.Namespace) -> int:
    from srstream.video.source import is_video_input

    if len(args.paths) < 2:
        raise ValueError("upscale needs IN and OUT (or several IN and an OUTDIR)")
    inputs, target = args.paths[:-1], args.paths[-1]
    videos = [is_video_input(i) for i in inputs]
    _choose_model(args, any(videos), inputs[0])
    if any(videos):
        if not all(videos):
            bad = next(i for i, v in zip(inputs, videos) if not v)
            raise ValueError(f"{bad}: not a video input; several inputs must all be videos or streams")
        from srstream.video.commands import cmd_video

        return cmd_video(args, inputs, target, lambda batch: _upscaler(args, batch))
    if len(inputs) > 1:
        raise ValueError(f"{inputs[1]}: one image or image directory at a time")
    return cmd_images(args, Path(inputs[0]), Path(target))


def cmd_images(args: argparse.Namespace, source: Path, target: Path) -> int:
    """One image into a file, or a directory of images into a directory of PNGs."""
    size = from_options(args.outscale, args.size)
    jobs = _jobs(source, target)
    existing = [d for _, d in jobs if d.exists()]
    if existing and not args.overwrite:
        raise ImageError(f"{existing[0]}: already exists (use -y/--overwrite to replace it)")
    first = read_image(jobs[0][0])  # a bad single input fails here, before any model is loaded
    upscaler = _upscaler(args, 1)
    if not args.quiet:
        print(f"srstream: {upscaler.spec.name} x{upscaler.scale} on {upscaler.label}{args.model_note}", file=sys.stderr)
    failed = 0
    for n, (src, dst) in enumerate(tqdm(jobs, desc="upscaling", unit="img", disable=len(jobs) == 1 or args.quiet)):
        try:
            image = first if n == 0 else read_image(src)
        except ImageError as exc:  # in a directory, one bad file is reported and the rest go on
            print(f"srstream: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        out = upscaler.upscale(image, size.resolve(image.shape[1], image.shape[0], upscaler.scale))
        write_image(dst, out)
    if len(jobs) == 1 and not args.quiet and not failed:
        print(f"wrote {jobs[0][1]} ({out.shape[1]}x{out.shape[0]})", file=sys.stderr)
    return 1 if failed else 0


def cmd_batch(args: argparse.Namespace) -> int:
    from srstream.video.commands import cmd_batch as run

    _choose_model(args, video=True)
    return run(args)


def cmd_export(args: argparse.Namespace) -> int:
    from srstream.export_command import cmd_export as run

    return run(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from srstream.tune_command import (
        cmd_tune as run,  # the codec and training code: only for this command
    )

    return run(args)


def cmd_models(args: argparse.Namespace) -> int:
    models = shipped_models()
    width = max(map(len, models), default=0)
    for name, model in models.items():
        figures = ", ".join(e.summary() for e in model.evaluations)
        channels = f"{model.channels}ch" + ("+qp" if model.takes_qp else "")  # takes the codec's QP beside the frame
        print(f"{name:<{width}}  {model.architecture:<10} {model.scale_label:<4} {channels:<6} {figures}")
    print()
    for line in defaults.verdict_lines():
        print(line)
    return 0


PRECISION_HELP = (
    "number format: auto (default) is fp16 on CUDA, bf16 on CPUs with native bf16 (AVX512-BF16, AMX), else fp32"
)
OUTSCALE_HELP = "final scale factor, any model (x3 from an x4 model, say): the output is resampled (Lanczos)"
SIZE_HELP = "exact output size WxH; -1 on one side keeps the aspect ratio (1920x-1), as ffmpeg's scale filter"


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """--precision, --outscale and --size, the same for upscale and batch (sizes are checked by `from_options`,
    so a bad one is a one-line error)."""
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=PRECISION_HELP)
    parser.add_argument("--outscale", metavar="F", help=OUTSCALE_HELP)
    parser.add_argument("-s", "--size", metavar="WxH", help=SIZE_HELP)


def _dash_values(argv: list[str]) -> list[str]:
    # argparse takes "--size -1x720" for two options; ffmpeg users write the -1 first, so bind it to --size.
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in ("-s", "--size") and arg.startswith("-"):
            out[-1] = f"{out[-1]}={arg}" if out[-1] == "--size" else f"-s{arg}"
        else:
            out.append(arg)
    return out


TTA_HELP = (
    "self-ensemble: average the model over the 8 flips and transposes of each frame (8x the time, a little "
    "more fidelity)"
)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model and how the engine runs it: the same for upscale and batch."""
    parser.add_argument(
        "-m",
        "--model",
        help="shipped name or weights path (default: the rule's pick of the "
        "shipped models for video on this hardware, or for images; `srstream models` says which)",
    )
    parser.add_argument("--backend", default="auto", choices=BACKENDS)
    parser.add_argument("--batch", type=int, default=Settings.batch, help="frames per engine call (video)")
    parser.add_argument("--tta", action="store_true", help=TTA_HELP)
    add_engine_options(parser)


def _add_encoder_options(parser: argparse.ArgumentParser) -> None:
    """How video outputs are encoded: the same for upscale and batch."""
    parser.add_argument(
        "-c:v", "--codec", default=EncodeOptions.codec, help="video encoder: libx264, libx265, h264_nvenc, ..."
    )
    parser.add_argument("--crf", type=int, default=EncodeOptions.crf, help="constant rate factor (default %(default)s)")
    parser.add_argument("--preset", default=EncodeOptions.preset, help="encoder preset (default %(default)s)")
    parser.add_argument("--pix-fmt", help="output pixel format (default: yuv420p, or 10-bit for 10-bit input)")


def _add_stream_options(parser: argparse.ArgumentParser) -> None:
    """How inputs are read: duration, reconnects, segments, the live policy."""
    parser.add_argument("-t", "--duration", type=float, help="stop after this many seconds of input")
    parser.add_argument("--retries", type=int, default=Settings.retries, help="reconnect attempts for a dropped stream")
    parser.add_argument(
        "--timeout", type=float, default=Settings.timeout_s, help="connect/read timeout in seconds for streams"
    )
    parser.add_argument(
        "--segment-time",
        type=float,
        help="write OUT as NAME_000.EXT, NAME_001.EXT, ... of about "
        "this many seconds each (for long recordings and live streams)",
    )
    parser.add_argument(
        "--live",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="drop frames to keep latency bounded (default: on for network streams, off for files)",
    )
    parser.add_argument(
        "--max-latency",
        type=float,
        default=Settings.max_latency,
        metavar="SECONDS",
        help="live: the most a frame may wait from capture to written (default %(default)s)",
    )
    parser.add_argument(
        "--label",
        action="store_true",
        help="burn a small 'upscaled by srstream MODEL' into the "
        "picture (bottom left), so that a frame shown alone still says what it is",
    )
    parser.add_argument(
        "--crash-safe",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write outputs that stay playable if the process is killed (fragmented MP4, Matroska "
        "clusters of a second); default: on for live inputs and inputs of a minute or more",
    )


def _add_upscale(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser(
        "upscale",
        usage="%(prog)s [options] IN [IN ...] OUT",
        help="upscale a video file, image sequence (frame_%%04d.png), rtsp:// stream, an image, or "
        "a directory of images into a directory of PNGs",
    )
    up.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="inputs, then OUT: a file, a URL to push to (rtsp://, rtmp://, udp://, srt://), or a "
        "directory (for an image directory, or several video inputs: NAME.mp4, cam_HOST_PORT_PATH.mp4)",
    )
    _add_model_options(up)
    up.add_argument("--scale", type=int, help="check that the model upscales by this factor")
    up.add_argument("--tile", type=int, default=0, help="LR tile size in pixels (0 = automatic)")
    _add_encoder_options(up)
    _add_stream_options(up)
    up.add_argument(
        "--format",
        help="container: of outputs written into OUTDIR (default mp4), or of OUT '-', "
        "standard output (default matroska; nut, mpegts, mp4 also stream)",
    )
    up.add_argument(
        "--json",
        action="store_true",
        help="print the run's statistics as JSON (video; a list of them for several inputs)",
    )
    up.add_argument("-y", "--overwrite", action="store_true", help="replace existing outputs")
    up.add_argument("-q", "--quiet", action="store_true")
    up.set_defaults(func=cmd_upscale)


def _add_batch(sub: argparse._SubParsersAction) -> None:
    batch = sub.add_parser("batch", help="upscale many videos (folders, list files, paths) into a directory")
    batch.add_argument("inputs", nargs="+", metavar="IN", help="video files, folders of them, or .txt lists")
    batch.add_argument("-o", "--output-dir", required=True, help="where the outputs go (NAME_x4.mp4)")
    _add_model_options(batch)
    _add_encoder_options(batch)
    batch.add_argument("--format", default="mp4", help="output container suffix (default %(default)s)")
    batch.add_argument(
        "-j",
        "--workers",
        type=int,
        default=2,
        help="videos at a time, through one engine in this process (default %(default)s)",
    )
    batch.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run as Ray tasks: no ADDRESS starts a local Ray, 'auto' joins a running cluster",
    )
    batch.add_argument("--json", action="store_true")
    batch.add_argument("-y", "--overwrite", action="store_true")
    batch.add_argument("-q", "--quiet", action="store_true")
    batch.set_defaults(func=cmd_batch)


def _add_export(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="write the model as ONNX, or as a TensorRT engine built ahead of time")
    export.add_argument(
        "-m", "--model", default="srresnet-x4", help="shipped name or weights path; an .onnx file for --format tensorrt"
    )
    export.add_argument("-f", "--format", choices=("onnx", "tensorrt"), default="onnx")
    export.add_argument("-o", "--output", metavar="FILE", help="default NAME-PRECISION.onnx or NAME.engine")
    export.add_argument(
        "--precision",
        choices=("fp32", "fp16"),
        default=None,
        help="inside the graph (I/O stays fp32); default fp32 for onnx, fp16 for tensorrt",
    )
    export.add_argument("--batch", default="1,4,8", help="engine profile: MIN,OPT,MAX batch (default %(default)s)")
    export.add_argument("--height", default="16,270,1088", help="engine profile: LR height (default %(default)s)")
    export.add_argument("--width", default="16,480,1920", help="engine profile: LR width (default %(default)s)")
    export.add_argument(
        "--target",
        help="TensorRT-RTX: compute capabilities to build for, e.g. 8.6,8.9 (default 8.0,8.6,8.9,12.0; 7.5 for Turing)",
    )
    export.add_argument(
        "--runtime",
        choices=("tensorrt", "tensorrt-rtx"),
        help="default: full TensorRT where it imports, else TensorRT-RTX",
    )
    export.add_argument("-y", "--overwrite", action="store_true")
    export.add_argument("-q", "--quiet", action="store_true")
    export.set_defaults(func=cmd_export)


def _add_tune(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser(
        "tune", help="fine-tune a camera model on one camera's footage (a file or stream) and write a model file for -m"
    )
    tune.add_argument("input", metavar="IN", help="the camera's footage: a video file or rtsp://... stream")
    tune.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="the tuned model (.safetensors, with its card beside it as .json)",
    )
    tune.add_argument("-m", "--model", help="the model to start from (default: the video default on a CPU)")
    tune.add_argument("--seconds", type=float, default=300.0, help="training time (default %(default)s)")
    tune.add_argument("-t", "--duration", type=float, help="read at most this many seconds of footage")
    tune.add_argument("--frames", type=int, default=250, help="read at most this many frames (default %(default)s)")
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output")
    tune.add_argument("-q", "--quiet", action="store_true")
    tune.set_defaults(func=cmd_tune)


def build_parser() -> argparse.ArgumentParser:
    """srstream's command line: upscale, batch, export, tune, models, serve, verify."""
    parser = argparse.ArgumentParser(prog="srstream", description="SRGAN super-resolution for images and video")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_upscale(sub)
    _add_batch(sub)
    _add_export(sub)
    _add_tune(sub)
    models = sub.add_parser("models", help="list the shipped models and their measured PSNR")
    models.set_defaults(func=cmd_models)
    add_site_commands(sub)
    return parser


def run_command(argv: list[str] | None = None) -> int:
    """Run one srstream command; 0 on success, 1 on an error (one line on stderr)."""
    args = build_parser().parse_args(_dash_values(sys.argv[1:] if argv is None else list(argv)))
    log_to_stderr(level=logging.WARNING)
    redact_logging()
    try:
        return args.func(args)
    except (SrstreamError, ValueError, OSError) as exc:  # ours, and a library's bad value or failed write
        print(f"srstream: error: {redact(str(exc))}", file=sys.stderr)
        return 1
