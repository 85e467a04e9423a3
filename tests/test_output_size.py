"""Output sizes as people ask for them: --outscale and --size on images and the real sample clip, the even rounding
for 4:2:0, the one-line errors, and the Lanczos resampler against Pillow's."""
import json
import subprocess
import sys

import av
import numpy as np
import pytest
import torch
from PIL import Image

from srstream.cli import main
from srstream.images import read_image
from srstream.output_size import OutputSize, OutputSizeError, even, from_options, parse_size
from srstream.resample import resize
from training.metrics import psnr_y

from assets import DATA, EXAMPLES, ROOT, SAMPLE

TRUE_720P = DATA / "video" / "vtest_720p_1s.mp4"  # the same footage's real 1280x720 frames, stream-copied


def test_sizes_from_factors_and_from_width_or_height_with_the_aspect_kept():
    assert OutputSize().resolve(320, 180, 4) == (1280, 720)
    assert OutputSize(outscale=3).resolve(320, 180, 4) == (960, 540)
    assert OutputSize(outscale=2.5).resolve(352, 288, 4) == (880, 720)
    assert parse_size("1920x1080").resolve(320, 180, 4) == (1920, 1080)
    assert parse_size("1000x-1").resolve(320, 180, 4) == (1000, 563)  # 562.5 rounds half up
    assert parse_size("-1:720").resolve(352, 288, 4) == (880, 720)  # ffmpeg's W:H spelling too
    assert even((1001, 563)) == (1002, 564) and even((960, 540)) == (960, 540) and even((1, 1)) == (2, 2)


@pytest.mark.parametrize("outscale, size, message", [
    (None, "abc", "expected WxH"), (None, "0x0", "must be positive"), (None, "-1x-1", "only one side"),
    (None, "12x-5", "must be positive"), ("abc", None, "expected a number"), ("-2", None, "positive factor"),
    ("0", None, "positive factor"), ("inf", None, "positive factor"), ("3", "10x10", "exclusive"),
])
def test_bad_values_are_refused(outscale, size, message):
    with pytest.raises(OutputSizeError, match=message):
        from_options(outscale, size)


@pytest.mark.parametrize("args", [["--size", "abc"], ["--size", "0x0"], ["--size", "-1x-1"], ["--outscale", "x"]])
def test_cli_errors_are_one_line_before_any_work(tmp_path, args):
    out = tmp_path / "out.mp4"
    run = subprocess.run([sys.executable, "-m", "srstream.cli", "upscale", str(SAMPLE), str(out), *args],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("srstream: error: --")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_lanczos_resampler_equals_pillows_on_a_real_image():
    image = read_image(EXAMPLES / "foreman.png").astype(np.float32) / 255
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    for size in ((264, 216), (1000, 400), (353, 100)):
        want = np.stack([np.asarray(Image.fromarray(image[..., c], mode="F").resize(size, Image.LANCZOS))
                         for c in range(3)], axis=-1)
        got = resize(x, size)[0].permute(1, 2, 0).numpy()
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-5


def test_image_outscale_and_size_with_minus_one(tmp_path):
    src = EXAMPLES / "foreman.png"  # 352x288
    assert main(["upscale", str(src), str(tmp_path / "a.png"), "-m", "fast-x4", "--outscale", "3", "-q"]) == 0
    assert Image.open(tmp_path / "a.png").size == (1056, 864)
    assert main(["upscale", str(src), str(tmp_path / "b.png"), "-m", "fast-x4", "--size", "-1x500", "-q"]) == 0
    assert Image.open(tmp_path / "b.png").size == (611, 500)  # 352 * 500 / 288 = 611.1
    assert main(["upscale", str(src), str(tmp_path / "c.png"), "-m", "fast-x4", "-s", "200x100", "-q"]) == 0
    assert Image.open(tmp_path / "c.png").size == (200, 100)


def _frames(path, count):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for _, f in zip(range(count), c.decode(video=0))]


def test_outscale_3_on_the_real_clip_keeps_timing_and_audio_and_beats_bicubic(tmp_path):
    out = tmp_path / "x3.mp4"
    assert main(["upscale", str(SAMPLE), str(out), "-m", "fast-x4", "--outscale", "3", "-t", "1", "--json"]) == 0
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.codec_context.height) == (960, 540) and c.streams.audio
        out_pts = [float(f.pts * v.time_base) for f in c.decode(video=0)]  # decodes: the file plays
    with av.open(str(SAMPLE)) as c:
        v = c.streams.video[0]
        in_pts = [float(f.pts * v.time_base) for _, f in zip(range(len(out_pts)), c.decode(video=0))]
    assert len(out_pts) == 25 and out_pts == pytest.approx(in_pts)
    # Truth: the real 720p frames, area-resized to 960x540; the contender: bicubic from the same 320x180 frames.
    # The sample starts with one extra frame (ffmpeg's cut), so its frame i is the original's frame i - 1.
    truth = [np.asarray(Image.fromarray(f).resize((960, 540), Image.BOX)) for f in _frames(TRUE_720P, 24)]
    bicubic = [np.asarray(Image.fromarray(f).resize((960, 540), Image.BICUBIC)) for f in _frames(SAMPLE, 25)[1:]]
    ours = _frames(out, 25)[1:]
    psnr_ours = np.mean([psnr_y(a, t, 3) for a, t in zip(ours, truth)])
    psnr_bicubic = np.mean([psnr_y(b, t, 3) for b, t in zip(bicubic, truth)])
    assert psnr_ours > psnr_bicubic + 2.0, (psnr_ours, psnr_bicubic)  # measured: 33.5 against 30.6 dB


def test_odd_video_sizes_are_rounded_to_even_with_a_log_line(tmp_path, capsys, caplog):
    out = tmp_path / "odd.mp4"
    assert main(["upscale", str(SAMPLE), str(out), "-m", "fast-x4", "-s", "401x-1", "-t", "0.2", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["size_out"] == [402, 226]  # 401x226 (225.6) -> 402x226 for yuv420p
    with av.open(str(out)) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (402, 226)
    assert "401x226 rounded to 402x226" in caplog.text
