"""SIGINT and SIGTERM at random moments (seeded: model loading, the first batch, mid-run, finishing) for every front
door that writes files: each run ends with exit 130 and no traceback (or 0 if it had already finished), and what it
leaves is finished and readable or not there at all; never a hidden temporary file or a half-written output."""
import random
import signal
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from assets import DATA, EXAMPLES, ROOT

RNG = random.Random(22)
VIDEO_MOMENTS = [(sig, round(RNG.uniform(0.2, 12.0), 2)) for sig in ("SIGINT", "SIGTERM", "SIGINT", "SIGTERM")]
IMAGE_MOMENTS = [(sig, round(RNG.uniform(0.2, 8.0), 2)) for sig in ("SIGINT", "SIGTERM")]
VOLUME_MOMENTS = [(sig, round(RNG.uniform(0.2, 10.0), 2)) for sig in ("SIGINT", "SIGTERM")]


def interrupted(argv: list[str], sig: str, after: float) -> subprocess.CompletedProcess:
    """Run a front door's module with `argv`, send `sig` after `after` seconds (unless it ended), wait for it."""
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        proc.wait(timeout=after)
    except subprocess.TimeoutExpired:
        proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=180)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _ended_well(run: subprocess.CompletedProcess, folder) -> None:
    assert run.returncode in (0, 130), run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    assert not list(folder.rglob(".*")), list(folder.rglob(".*"))  # nothing temporary left behind


@pytest.mark.parametrize("sig,after", VIDEO_MOMENTS)
def test_a_video_interrupted_at_any_moment_is_playable_or_absent(tmp_path, sig, after):
    out = tmp_path / "clip.mp4"
    run = interrupted(["srstream.cli", "upscale", str(EXAMPLES / "vtest_320x180.mp4"), str(out), "-m", "fast-x4",
                       "--backend", "cpu", "-q"], sig, after)
    _ended_well(run, tmp_path)
    if out.exists():  # frames were encoded: they all play, in order
        with av.open(str(out)) as c:
            times = [f.time for f in c.decode(video=0)]
        assert len(times) >= 1 and np.all(np.diff(times) > 0)
    else:
        assert run.returncode == 130  # interrupted before any frame was encoded: no empty file


@pytest.mark.parametrize("sig,after", IMAGE_MOMENTS)
def test_an_image_interrupted_at_any_moment_is_whole_or_absent(tmp_path, sig, after):
    from PIL import Image

    out = tmp_path / "foreman_x4.png"
    run = interrupted(["srstream.cli", "upscale", str(EXAMPLES / "foreman.png"), str(out), "-m", "srresnet-x4",
                       "--backend", "cpu", "--precision", "fp32", "-q"], sig, after)
    _ended_well(run, tmp_path)
    if out.exists():
        with Image.open(out) as image:
            image.load()
            assert image.size == (352 * 4, 288 * 4)
    else:
        assert run.returncode == 130


@pytest.mark.parametrize("sig,after", VOLUME_MOMENTS)
def test_a_volume_interrupted_at_any_moment_is_whole_or_absent(tmp_path, sig, after):
    nib = pytest.importorskip("nibabel")
    out = tmp_path / "out"
    run = interrupted(["medical.cli", "upscale", str(DATA / "mri" / "t1_head_crop.nii.gz"), "-o", str(out),
                       "--backend", "cpu", "--precision", "fp32", "-q"], sig, after)
    _ended_well(run, tmp_path)
    volumes = list(out.glob("*.nii*")) if out.exists() else []
    for path in volumes:  # whatever has its final name is a whole volume
        assert nib.load(path).get_fdata().shape == (128, 128, 32)
    if not volumes:
        assert run.returncode == 130


def test_a_batch_interrupted_mid_run_finishes_what_it_has(tmp_path):
    videos = tmp_path / "in"
    videos.mkdir()
    for name in ("a", "b"):
        (videos / f"{name}.mp4").write_bytes((DATA / "video" / "vtest_320x180_2s.mp4").read_bytes())
    out = tmp_path / "out"
    started = time.monotonic()
    run = interrupted(["srstream.cli", "batch", str(videos), "-o", str(out), "-m", "fast-x4", "--backend", "cpu",
                       "-q"], "SIGINT", 6.0)
    _ended_well(run, tmp_path)
    assert time.monotonic() - started < 120
    for path in out.glob("*.mp4"):
        with av.open(str(path)) as c:
            assert sum(1 for _ in c.decode(video=0)) >= 1


LATE_SIGNAL_PROGRAM = '''
import sys
import time
from pathlib import Path

from srstream.signals import exit_after


class SlowTeardown:  # torch's objects take a while to tear down at shutdown; this one says when it starts
    def __init__(self, marker):
        self.marker, self.sleep = marker, time.sleep

    def __del__(self):
        self.marker.write_text("tearing down")
        self.sleep(2)


keep = SlowTeardown(Path(sys.argv[1]))
exit_after(lambda: 0)
'''


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_after_the_work_finished_keeps_exit_0(tmp_path, sig):
    # Python gives SIGINT back its default action at shutdown: without exit_after a signal then killed a finished
    # srmed run with no message (CI saw -2 for a volume that was written)
    (tmp_path / "late.py").write_text(LATE_SIGNAL_PROGRAM)
    marker = tmp_path / "teardown"
    proc = subprocess.Popen([sys.executable, str(tmp_path / "late.py"), str(marker)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), proc.stderr.read() if proc.poll() is not None else "no teardown within 60 s"
    proc.send_signal(getattr(signal, sig))
    assert proc.wait(timeout=30) == 0, proc.stderr.read()


def test_ctrl_c_while_an_output_is_being_finished_waits_for_it():
    """The input has ended and the encoder is draining when Ctrl-C comes: the wait goes on to the end (the output is
    then finished, not left as a hidden partial file) and the interrupt is reported, to be raised again after."""
    import threading

    from srstream.video.stream import _join_through_interrupts

    # Python's own Ctrl-C handler, as a command starts with it: after the rest of the suite this process has been
    # left ignoring SIGINT (found by a probe; which test does it is not yet known).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        encoder = threading.Thread(target=time.sleep, args=(0.6,))
        encoder.start()
        main = threading.main_thread().ident
        assert main is not None
        threading.Timer(0.1, signal.pthread_kill, (main, signal.SIGINT)).start()
        assert _join_through_interrupts(encoder) is True
        assert not encoder.is_alive()
    finally:
        signal.signal(signal.SIGINT, previous)
