"""The video front door's commands: `srstream upscale` of video inputs (one, or several into a directory) and
`srstream batch`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from srstream.engine import Upscaler
from srstream.models import load_model
from srstream.output_size import from_options
from srstream.redact import redact
from srstream.video.pipeline import (
    check_output,
    output_name,
    upscale_many,
    upscale_video,
)
from srstream.video.settings import EncodeOptions, Settings
from srstream.video.sink import STDOUT, is_url
from srstream.video.stats import Stats
from srstream.video.video_jobs import VideoJob, collect_inputs, run_batch


def _options(args: argparse.Namespace) -> EncodeOptions:
    return EncodeOptions(codec=args.codec, crf=args.crf, preset=args.preset, pix_fmt=args.pix_fmt)


def _summary(stats: Stats) -> str:
    extra = ""
    if stats.streams_reencoded:
        extra += f"; re-encoded {', '.join(stats.streams_reencoded)}"
    if stats.streams_dropped:
        extra += f"; dropped {', '.join(stats.streams_dropped)}"
    if stats.latency_p95_s is not None:
        extra += f"; latency p50 {stats.latency_p50_s:.2f} s, p95 {stats.latency_p95_s:.2f} s"
    copied = ", ".join(stats.streams_copied) or "no other streams"
    return (
        f"wrote {redact(str(stats.output))}: {stats.frames_out} frames {stats.size_out[0]}x{stats.size_out[1]} "
        f"in {stats.seconds:.1f}s ({stats.fps:.2f} fps, {stats.backend} {stats.precision}), {stats.reconnects} "
        f"reconnects, {stats.dropped_frames} dropped; copied {copied}{extra}"
        f"{' (interrupted)' if stats.interrupted else ''}"
    )


def _targets(inputs: list[str], out_dir: Path, suffix: str) -> list[tuple[str, Path]]:
    """Each input's output in `out_dir`, named after it; a name already taken gets _2, _3, ..."""
    taken: set[str] = set()
    jobs = []
    for source in inputs:
        name = output_name(source, suffix)
        stem, n = name[: -len(suffix)], 2
        while name in taken:
            name, n = f"{stem}_{n}{suffix}", n + 1
        taken.add(name)
        jobs.append((source, out_dir / name))
    return jobs


def _jobs(args: argparse.Namespace, inputs: list[str], target: str) -> tuple[bool, list]:
    """(several outputs?, [(input, output)]): one input into OUT, or inputs into the directory OUTDIR."""
    if len(inputs) > 1 and is_url(target):
        raise ValueError(f"{target}: several inputs need an output directory, not a URL")
    to_stdout = target == STDOUT
    if to_stdout and (len(inputs) > 1 or args.json):
        raise ValueError("-: standard output carries one video stream; it cannot take several inputs or --json")
    several = len(inputs) > 1 or (not is_url(target) and not to_stdout and Path(target).is_dir())
    if not several:
        return False, [(inputs[0], target if is_url(target) or to_stdout else Path(target))]
    fmt = args.format or "mp4"
    return True, _targets(inputs, Path(target), fmt if fmt.startswith(".") else f".{fmt}")


def _settings(args: argparse.Namespace, size, label: str | None) -> Settings:
    """The run's Settings, from the parsed flags: the only place the video CLI's Namespace becomes one."""
    return Settings(
        options=_options(args),
        batch=args.batch,
        duration=args.duration,
        retries=args.retries,
        timeout_s=args.timeout,
        segment_time=args.segment_time,
        output_size=size,
        live=args.live,
        max_latency=args.max_latency,
        crash_safe=args.crash_safe,
        label=label,
    )


def _one(args: argparse.Namespace, job: tuple, upscaler: Upscaler, settings: Settings) -> int:
    """One input into one output; its summary or JSON; 130 if interrupted."""
    source, out = job
    if out == STDOUT:
        settings = replace(settings, container=args.format)
    progress = not (args.quiet or args.json)
    stats = upscale_video(source, out, upscaler, settings, overwrite=args.overwrite, progress=progress)
    if args.json:
        print(json.dumps(stats.to_dict(), indent=2))
    elif not args.quiet:
        print(_summary(stats), file=sys.stderr)
    return 130 if stats.interrupted else 0


def _many(args: argparse.Namespace, jobs: list, upscaler: Upscaler, settings: Settings) -> int:
    """Several inputs through one engine; a line (or JSON) each; 130 if interrupted, 1 if any failed."""
    results = upscale_many(jobs, upscaler, settings, progress=not (args.quiet or args.json), overwrite=args.overwrite)
    for stats in results:
        if stats.error:
            print(f"srstream: error: {redact(stats.error)}", file=sys.stderr)
        elif not (args.quiet or args.json):
            print(_summary(stats), file=sys.stderr)
    if args.json:
        print(json.dumps([s.to_dict() for s in results], indent=2))
    if any(s.interrupted for s in results):
        return 130
    return 1 if any(s.error for s in results) else 0


def cmd_video(args: argparse.Namespace, inputs: list[str], target: str, upscaler_for: Callable[[int], Upscaler]) -> int:
    """One video input into OUT (a file or a URL), or several (or one into an existing directory) into OUTDIR."""
    several, jobs = _jobs(args, inputs, target)
    size = from_options(args.outscale, args.size)
    for source, path in jobs:  # before the model loads
        check_output(source, path, args.overwrite, args.segment_time)
    upscaler: Upscaler = upscaler_for(args.batch)
    settings = _settings(args, size, f"upscaled by srstream {upscaler.spec.name}" if args.label else None)
    if not args.quiet:
        print(f"srstream: {upscaler.spec.name} x{upscaler.scale} on {upscaler.label}{args.model_note}", file=sys.stderr)
    if several:
        return _many(args, jobs, upscaler, settings)
    return _one(args, jobs[0], upscaler, settings)


def cmd_batch(args: argparse.Namespace) -> int:
    """Many video files (folders, .txt lists, paths) into a directory, through one engine or as Ray tasks."""
    size = from_options(args.outscale, args.size)
    inputs = collect_inputs(args.inputs)
    if not inputs:
        raise ValueError(f"{' '.join(args.inputs)}: no video files found")
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = args.format if args.format.startswith(".") else f".{args.format}"
    tag = (
        f"x{size.outscale:g}"
        if size.outscale
        else f"{size.width}x{size.height}"
        if size.width
        else f"x{load_model(args.model).scale}"
    )
    jobs = [
        VideoJob(
            source=str(p),
            output=str(out_dir / f"{p.stem}_{tag}{suffix}"),
            model=args.model,
            backend=args.backend,
            batch=args.batch,
            options=_options(args),
            overwrite=args.overwrite,
            tta=args.tta,
            precision=args.precision,
            output_size=size,
        )
        for p in inputs
    ]
    results = run_batch(jobs, workers=args.workers, ray_address=args.ray, progress=not args.quiet)
    failed = [r for r in results if r.get("error")]
    for r in failed:
        print(f"srstream: error: {r['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "trace"} for r in results], indent=2))
    elif not args.quiet:
        print(f"{len(results) - len(failed)} of {len(results)} videos upscaled into {out_dir}", file=sys.stderr)
    if any(r.get("interrupted") for r in results):
        return 130
    return 1 if failed else 0
