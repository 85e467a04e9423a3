"""Nothing lost: a recording killed with SIGKILL still plays up to about where it was, a full disk is one line naming
the output (the other inputs go on), and video goes through pipes (`-` in and out) with nothing but video on stdout.
All on the real sample clip."""
import io
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import av
import numpy as np
import pytest

from assets import CLIP as SHORT
from assets import DATA, ROOT, SAMPLE
from conftest import LogWatch
from faults import remux

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg to make the inputs")


def playable_frames(path: Path) -> list[float]:
    """The times of the frames a player gets from `path`, reading on until the data ends or breaks off."""
    times = []
    with av.open(str(path)) as c:
        for packet in c.demux(video=0):
            try:
                times += [f.time for f in packet.decode()]
            except av.error.InvalidDataError:  # the packet a kill cut in half: players stop there too
                break
    return times


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_recording_killed_with_sigkill_plays_up_to_near_the_kill(tmp_path, suffix):
    out = tmp_path / f"rec{suffix}"
    proc = subprocess.Popen([sys.executable, "-m", "srstream.cli", "upscale", str(SAMPLE), str(out), "-m", "fast-x4",
                             "--backend", "cpu", "--crash-safe", "--preset", "ultrafast", "--batch", "1"], cwd=ROOT,
                            stderr=subprocess.PIPE)
    log = LogWatch(proc.stderr)
    # Killed once 60 of the 100 frames went through the engine (the progress line says so), however fast that is.
    assert log.wait_for(r"\| *([6-9]\d|100)/100 \[", timeout=300), log.text
    proc.kill()
    proc.wait(timeout=30)
    assert out.exists() and not list(tmp_path.glob(".*"))  # under its own name: no hidden file to recover
    times = playable_frames(out)
    # What a kill loses: the fragment being written (a second, 25 frames), the encoder's and the queues' frames.
    assert len(times) >= 60 - 25 - 8, len(times)
    assert np.all(np.diff(times) > 0) and times[0] < 0.1
    with av.open(str(out)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (1280, 720) and c.streams.audio


def _stream(source: str, tmp_path: Path, **settings):
    from srstream.engine import Upscaler
    from srstream.video.settings import Settings
    from srstream.video.source import VideoInputError
    from srstream.video.stream import Stream

    stream = Stream(source, tmp_path / "out.mp4", Upscaler("fast-x4", backend="cpu"),
                    Settings(**settings), threading.Condition())
    if stream.exception is not None:
        raise VideoInputError(str(stream.exception))
    try:
        return stream.crash_safe()
    finally:
        stream.close(keep=False)


@needs_ffmpeg
def test_crash_safe_by_default_for_live_inputs_and_long_files_only(tmp_path):
    long = tmp_path / "long.mp4"  # the real clip 16 times over: 64 s
    subprocess.run(["ffmpeg", "-v", "error", "-stream_loop", "15", "-i", str(SAMPLE), "-c", "copy", str(long)],
                   check=True, timeout=60)
    assert not _stream(str(SAMPLE), tmp_path)
    assert _stream(str(long), tmp_path)
    assert not _stream(str(long), tmp_path, duration=10.0)  # only 10 s of it asked for
    assert _stream(str(SAMPLE), tmp_path, live=True)
    assert _stream(str(SAMPLE), tmp_path, crash_safe=True) and not _stream(str(long), tmp_path, crash_safe=False)


@pytest.fixture
def small_disk(tmp_path):
    """A 600 kB filesystem of its own (tmpfs): full after a second or so of 720p video."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_full_disk_is_one_line_naming_the_output(small_disk):
    out = small_disk / "full.mp4"
    run = subprocess.run([sys.executable, "-m", "srstream.cli", "upscale", str(SAMPLE), str(out), "-m", "fast-x4",
                          "--backend", "cpu", "--preset", "ultrafast", "-q"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("srstream: error: ")]
    assert errors == [f"srstream: error: {out}: cannot write (No space left on device)"], run.stderr
    assert not list(small_disk.iterdir())  # no half-written file, hidden or not


def test_a_full_disk_stops_one_output_and_the_others_go_on(fast_x4, small_disk, tmp_path):
    from srstream.video import EncodeOptions, Settings, upscale_many

    jobs = [(str(SAMPLE), small_disk / "a.mp4"), (str(SHORT), tmp_path / "b.mp4")]
    results = upscale_many(jobs, fast_x4, Settings(options=EncodeOptions(preset="ultrafast")),
                           progress=False)
    assert results[0].error == f"{small_disk / 'a.mp4'}: cannot write (No space left on device)"
    assert results[1].error is None
    assert len(playable_frames(tmp_path / "b.mp4")) == results[1].frames_out == len(playable_frames(SHORT))


def _container_bytes(fmt: str) -> bytes:
    """The short real clip remuxed (packets copied, audio too) into `fmt`, as ffmpeg would stream it."""
    buffer = io.BytesIO()
    remux(SHORT, buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt_in,fmt_out,magic", [("matroska", None, b"\x1a\x45\xdf\xa3"),
                                                   ("nut", "nut", b"nut/"),
                                                   ("mpegts", "mpegts", b"\x47")])
def test_video_goes_through_pipes_with_only_video_on_stdout(fmt_in, fmt_out, magic):
    argv = [sys.executable, "-m", "srstream.cli", "upscale", "-", "-", "-m", "fast-x4", "--backend", "cpu", "-t", "0.5"]
    run = subprocess.run(argv + (["--format", fmt_out] if fmt_out else []), input=_container_bytes(fmt_in),
                         capture_output=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout.startswith(magic)  # the container and nothing else: the logs went to stderr
    assert b"srstream: fast-x4 x4 on cpu" in run.stderr and b"wrote -: 13 frames" in run.stderr
    with av.open(io.BytesIO(run.stdout), format=fmt_out or "matroska") as c:
        frames = [f for f in c.decode(video=0)]
        assert c.streams.audio  # carried through the pipes
    assert len(frames) == 13 and (frames[0].width, frames[0].height) == (1280, 720)


def test_stdout_takes_one_video_and_no_json():
    run = subprocess.run([sys.executable, "-m", "srstream.cli", "upscale", str(SHORT), "-", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip() == ("srstream: error: -: standard output carries one video stream; it cannot take "
                                  "several inputs or --json")


def test_standard_input_that_is_not_a_stream_is_one_line():
    run = subprocess.run([sys.executable, "-m", "srstream.cli", "upscale", "-", "out.mkv", "-m", "fast-x4", "-q"],
                         input=b"not a video" * 100, capture_output=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1 and b"Traceback" not in run.stderr
    assert run.stderr.decode().strip().startswith("srstream: error: -: cannot read a video from standard input")
    assert not (ROOT / "out.mkv").exists()


def test_a_full_disk_fails_one_volume_and_srmed_goes_on(tmp_path):
    pytest.importorskip("nibabel")
    import json

    disk = tmp_path / "disk"
    disk.mkdir()
    # 40 kB: room for the small phantom's output (16 kB) and the reports, not for the head's (x2: 70 kB)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40k", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        run = subprocess.run([sys.executable, "-m", "medical.cli", "upscale", str(DATA / "mri" / "t1_head_crop.nii.gz"),
                              str(DATA / "mri" / "shear_small.nii.gz"), "-o", str(disk / "out"), "--backend", "cpu",
                              "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
        head = disk / "out" / "t1_head_crop.nii.gz"
        assert run.stderr.strip() == f"srmed: error: {head}: cannot write (No space left on device)"
        summary = json.loads((disk / "out" / "summary.json").read_text())
        assert summary["done"] == 1 and summary["failures"][0]["error"].startswith(str(head))
        assert not head.exists() and not list((disk / "out").glob(".*"))  # nothing half-written
        assert (disk / "out" / "shear_small.nii.gz").exists()  # the next volume went on
    finally:
        subprocess.run(["umount", str(disk)], check=False)
