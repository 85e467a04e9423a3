"""`srstream export`: the model as ONNX for other runtimes (vs-mlrt, chaiNNer, onnxruntime, trtexec), or as a
TensorRT engine built ahead of time (TensorRT-RTX needs no GPU for it)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from srstream.backends.tensorrt_build import (
    Profile,
    build_engine,
    find_runtime,
    rtx_target,
)
from srstream.export import export_onnx
from srstream.models import load_model
from training.atomic import atomic_path


def cmd_export(args: argparse.Namespace) -> int:
    """ONNX for other runtimes (vs-mlrt, chaiNNer, onnxruntime, trtexec), or a TensorRT engine built ahead of time."""
    args.precision = args.precision or ("fp16" if args.format == "tensorrt" else "fp32")
    source = Path(args.model)
    from_onnx = source.suffix.lower() == ".onnx"
    if from_onnx and args.format == "onnx":
        raise ValueError(f"{source}: already ONNX; --format tensorrt builds an engine from it")
    if args.format == "tensorrt" and args.precision != "fp16":
        raise ValueError(
            "--format tensorrt builds fp16 engines (strongly typed from the fp16 graph): use --precision fp16"
        )
    if from_onnx and not source.is_file():
        raise ValueError(f"{source}: no such file")
    spec = None if from_onnx else load_model(args.model)
    name = source.stem if spec is None else spec.name
    out = (
        Path(args.output)
        if args.output
        else Path(f"{name}-{args.precision}.onnx" if args.format == "onnx" else f"{name}.engine")
    )
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out}: already exists (use -y/--overwrite to replace it)")
    if args.format == "onnx":
        assert spec is not None  # an ONNX source with --format onnx was refused above
        export_onnx(spec, out, half=args.precision == "fp16")
        if not args.quiet:
            print(
                f"wrote {out}: {name} x{spec.scale}, {args.precision} inside, fp32 input 'lr' and output 'sr', "
                "dynamic batch, height and width (NCHW, RGB in [0, 1])",
                file=sys.stderr,
            )
        return 0
    runtime = find_runtime(args.runtime)
    channels = onnx_input_channels(source) if spec is None else spec.input_channels
    profile = Profile.parse(channels, args.batch, args.height, args.width)
    targets = tuple(t for t in (args.target or "").split(",") if t) or None
    with tempfile.TemporaryDirectory(prefix="srstream-export-") as tmp:
        onnx_path = source if spec is None else export_onnx(spec, Path(tmp) / f"{name}-fp16.onnx", half=True)
        data = build_engine(onnx_path, profile, runtime, targets)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".engine") as tmp_out:
        Path(tmp_out).write_bytes(data)
    if not args.quiet:
        built_for = rtx_target(targets).removeprefix("sm:") if runtime.is_rtx else "this GPU"
        print(
            f"wrote {out}: {runtime.name} {runtime.version} engine of {name}, profile {profile.shapes()}, "
            f"for compute capability {built_for} ({len(data) / 1e6:.1f} MB)",
            file=sys.stderr,
        )
    return 0


def onnx_input_channels(path: Path) -> int:
    """The channel count of an ONNX model's first input (NCHW), 3 where the graph leaves it dynamic."""
    try:
        import onnx
    except ImportError:
        raise ValueError(
            f"{path}: reading an ONNX model needs the onnx package (pip install 'srstream[onnx]')"
        ) from None
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and others for what is not an ONNX model
        raise ValueError(f"{path}: not a readable ONNX model ({type(exc).__name__})") from None
    dims = graph.input[0].type.tensor_type.shape.dim if graph.input else []
    if len(dims) != 4:
        raise ValueError(f"{path}: the first input is not an image batch (NCHW)")
    return dims[1].dim_value or 3
