"""`srstream upscale` on still images: real photos, directories, 16 bit, refusals, and a PSNR win over bicubic."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from srstream.cli import main
from srstream.engine import Upscaler
from srstream.images import read_image, write_image
from training import evaluate as ev
from training.metrics import psnr_y

from assets import DATA, EXAMPLES, ROOT


def test_upscales_the_bundled_sample(tmp_path):
    out = tmp_path / "nested" / "foreman_x4.png"
    assert main(["upscale", str(EXAMPLES / "foreman.png"), str(out), "--model", "fast-x4", "-q"]) == 0
    assert Image.open(out).size == (352 * 4, 288 * 4)


def test_beats_bicubic_on_real_photos_it_never_trained_on(tmp_path):
    for name in ("bird.png", "head.png"):
        hr, lr = ev.benchmark_lr(np.asarray(Image.open(DATA / "set5" / name).convert("RGB")), 4)
        write_image(tmp_path / f"lr_{name}", lr)
        assert main(["upscale", str(tmp_path / f"lr_{name}"), str(tmp_path / f"sr_{name}"), "-q"]) == 0
        sr = read_image(tmp_path / f"sr_{name}")
        assert psnr_y(sr, hr, 4) > psnr_y(ev.bicubic_upscale(lr, 4), hr, 4) + 0.5


def test_directory_in_directory_out_with_same_stems(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    image = read_image(EXAMPLES / "foreman.png")
    write_image(src / "a.jpg", image[:40, :40])
    write_image(src / "b.png", image[40:80, :60])
    (src / "notes.txt").write_text("not an image")
    assert main(["upscale", str(src), str(tmp_path / "out"), "-m", "fast-x4", "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert read_image(tmp_path / "out" / "b.png").shape == (160, 240, 3)


@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_images_stay_sixteen_bit(tmp_path, channels):
    image = read_image(EXAMPLES / "foreman.png")[:24, :32].astype(np.uint16) * 257
    image = image[..., :1] if channels == 1 else image
    for suffix in (".png", ".tif"):
        write_image(tmp_path / f"in{suffix}", image)
        assert np.array_equal(read_image(tmp_path / f"in{suffix}"), image)
        assert main(["upscale", str(tmp_path / f"in{suffix}"), str(tmp_path / f"out{suffix}"), "-m", "fast-x4",
                     "-q"]) == 0
        out = read_image(tmp_path / f"out{suffix}")
        assert out.dtype == np.uint16 and out.shape == (96, 128, channels)


def test_refuses_to_overwrite_and_reports_bad_inputs_in_one_line(tmp_path, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"keep me")
    assert main(["upscale", str(EXAMPLES / "foreman.png"), str(out), "-m", "fast-x4"]) == 1
    assert out.read_bytes() == b"keep me"
    assert "already exists (use -y/--overwrite" in capsys.readouterr().err
    fake = tmp_path / "fake.png"
    fake.write_text("this is text")
    assert main(["upscale", str(fake), str(tmp_path / "x.png"), "-m", "fast-x4"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"srstream: error: {fake}: not a readable image (UnidentifiedImageError)"
    assert not (tmp_path / "x.png").exists() and not list(tmp_path.glob(".x*"))
    assert main(["upscale", str(tmp_path / "missing.png"), str(tmp_path / "y.png")]) == 1
    assert "missing.png: no such file or directory" in capsys.readouterr().err
    assert main(["upscale", str(EXAMPLES / "foreman.png"), str(tmp_path / "z.png"), "-m", "nope-x4"]) == 1
    assert "nope-x4: no such model" in capsys.readouterr().err


def test_console_script_lists_models():
    result = subprocess.run([sys.executable, "-m", "srstream.cli", "models"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0 and "srresnet-x4" in result.stdout and "Set5" in result.stdout


def test_tta_flag_reaches_the_engine(tmp_path):
    hr, lr = ev.benchmark_lr(np.asarray(Image.open(DATA / "set5" / "bird.png").convert("RGB")), 4)
    write_image(tmp_path / "lr.png", lr)
    assert main(["upscale", str(tmp_path / "lr.png"), str(tmp_path / "plain.png"), "-m", "fast-x4", "-q"]) == 0
    assert main(["upscale", str(tmp_path / "lr.png"), str(tmp_path / "tta.png"), "-m", "fast-x4", "--tta", "-q"]) == 0
    plain, tta = read_image(tmp_path / "plain.png"), read_image(tmp_path / "tta.png")
    assert tta.shape == plain.shape and psnr_y(tta, hr, 4) > psnr_y(plain, hr, 4)


def test_a_normal_run_is_quiet_and_both_clis_say_their_version(tmp_path):
    from srstream import __version__

    # A fresh interpreter, as a user runs it: torch's warnings are printed once per process, so pytest's own
    # process (which may have seen them already) could not tell.
    run = subprocess.run([sys.executable, "-m", "srstream.cli", "upscale", str(EXAMPLES / "foreman.png"),
                          str(tmp_path / "out.png"), "-m", "fast-x4"], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert run.returncode == 0
    assert run.stderr.splitlines() == [f"srstream: fast-x4 x4 on cpu {Upscaler('fast-x4', backend='cpu').precision}",
                                       f"wrote {tmp_path / 'out.png'} (1408x1152)"]
    for cli in ("srstream.cli", "medical.cli"):
        version = subprocess.run([sys.executable, "-m", cli, "--version"], capture_output=True, text=True, cwd=ROOT,
                                 timeout=120)
        assert version.returncode == 0 and version.stdout.split() == [cli.split(".")[0].replace("medical", "srmed"),
                                                                      __version__]
