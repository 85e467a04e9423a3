"""`srstream tune`: adapt a camera model to one camera by fine-tuning it on that camera's own recent footage
(`training.footage_tune`), and write a model file that `-m` takes. Its options are in `srstream.commands`; this
module is imported only when the command runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import numpy as np

from srstream.defaults import video_model
from srstream.models import load_model
from srstream.video.source import VideoInputError, is_video_input, open_input
from training.footage_tune import TuneSettings, camera_settings, fine_tune
from training.weights import save_weights


def read_footage(source: str, frames: int, duration: float | None) -> np.ndarray:
    """Up to `frames` decoded frames (N, H, W, 3) uint8 RGB from the start of `source` (within `duration` s)."""
    out: list[np.ndarray] = []
    with open_input(source) as container:
        first = None
        try:
            for frame in container.decode(video=0):
                first = frame.time if first is None else first
                if len(out) >= frames or (
                    duration is not None and None not in (frame.time, first) and frame.time - first >= duration
                ):
                    break
                image = frame.to_ndarray(format="rgb24")
                if out and image.shape != out[0].shape:  # a size change mid-stream: keep the first size's frames
                    break
                out.append(image)
        except av.error.FFmpegError as exc:  # damaged footage: tune on what decoded before it
            if not out:
                raise VideoInputError(f"{source}: cannot decode ({getattr(exc, 'strerror', None) or exc})") from None
    if not out:
        raise VideoInputError(f"{source}: no frame could be decoded")
    return np.stack(out)


def cmd_tune(args: argparse.Namespace) -> int:
    """Read the footage, tune, write the model and its card; 0 done, errors as one line."""
    out = Path(args.output).with_suffix(".safetensors")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out}: already exists (use -y/--overwrite to replace it)")
    if not is_video_input(args.input):
        raise ValueError(f"{args.input}: not a video file or stream")
    if args.seconds <= 0 or args.frames < 2:
        raise ValueError("--seconds must be above 0 and --frames at least 2")
    footage = read_footage(args.input, args.frames, args.duration)  # a bad input fails before the model loads
    spec = load_model(args.model or video_model("cpu"))  # tuning trains on the CPU
    descriptor = spec.descriptor
    if spec.recurrent or descriptor.source != "srstream" or descriptor.channels != 3 or descriptor.scale < 2:
        raise ValueError(
            f"{descriptor.name}: tune takes srstream's single-frame RGB upscalers (camera-fast-x4, "
            "fast-x4, ...), not this model"
        )
    camera = camera_settings(descriptor.camera_degradation)
    if not args.quiet:
        print(
            f"srstream: tuning {descriptor.name} on {len(footage)} frames of {args.input} "
            f"({footage.shape[2]}x{footage.shape[1]}) for {args.seconds:g} s",
            file=sys.stderr,
        )
    module, log = fine_tune(
        spec.module,
        footage,
        camera,
        descriptor.scale,
        TuneSettings(seconds=args.seconds, seed=args.seed),
        source=args.input,
        progress=not args.quiet,
        qp_input=descriptor.takes_qp,
    )
    tuned = descriptor.with_card(
        name=out.stem, evaluation={}, tuned={"base": descriptor.name, "footage": args.input, **log}
    )
    save_weights(module, out, tuned.card)
    if not args.quiet:
        print(
            f"wrote {out} ({log['steps']} steps, L1 {log['first_l1']} -> {log['last_l1']}); use it with -m {out}",
            file=sys.stderr,
        )
    return 0
