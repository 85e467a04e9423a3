"""srstream/video/video_jobs.py and `srstream batch` end to end: inputs from folders and list files, every video
upscaled through one engine, and one failed video an error line (never an exception) while the others go on."""

import shutil
import subprocess
from pathlib import Path

import av
import pytest

from srstream.cli import main
from srstream.video.video_jobs import VideoJob, collect_inputs, run_job

from assets import CLIP


def test_inputs_come_from_folders_sorted_list_files_and_plain_paths(tmp_path):
    folder = tmp_path / "cams"
    folder.mkdir()
    for name in ("b.mp4", "a.MKV", "notes.txt", "still.png"):
        (folder / name).write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{CLIP}\n\n/x/y.mov\n")
    found = collect_inputs([str(folder), str(listing), "z.ts"])
    assert found == [folder / "a.MKV", folder / "b.mp4", CLIP, Path("/x/y.mov"), Path("z.ts")]


def _tiny(path: Path, seconds: str = "0.4") -> Path:
    """The real clip's first frames at 64x36, so that the engine is quick."""
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(CLIP), "-t", seconds, "-vf", "scale=64:36", "-c:v",
                    "libx264", "-preset", "ultrafast", "-an", str(path)], check=True, timeout=60)
    return path


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg CLI makes the derived clips")
def test_srstream_batch_upscales_every_video_and_a_missing_one_fails_alone(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    _tiny(folder / "a.mp4")
    _tiny(folder / "b.mp4", "0.2")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{folder / 'a.mp4'}\n{tmp_path / 'gone.mp4'}\n")
    assert main(["batch", str(folder), "-o", str(tmp_path / "out"), "-m", "fast-x4", "--backend", "cpu",
                 "--preset", "ultrafast", "-q"]) == 0
    for name, frames in (("a", 10), ("b", 5)):
        (out,) = (tmp_path / "out").glob(f"{name}_*.mp4")
        with av.open(str(out)) as c:
            assert (c.streams.video[0].width, c.streams.video[0].height, c.streams.video[0].frames) == (256, 144,
                                                                                                         frames)
    capsys.readouterr()
    assert main(["batch", str(listing), "-o", str(tmp_path / "again"), "-m", "fast-x4", "--backend", "cpu",
                 "--preset", "ultrafast", "-q"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("srstream: error:")]
    assert len(errors) == 1 and "gone.mp4" in errors[0]
    assert [p.name.split("_")[0] for p in (tmp_path / "again").glob("*.mp4")] == ["a"]


def test_a_failed_video_comes_back_as_its_error_line_not_an_exception(tmp_path):
    failed = run_job(VideoJob(source=str(tmp_path / "gone.mp4"), output=str(tmp_path / "x.mp4"), model="fast-x4",
                              backend="cpu"))
    assert "gone.mp4" in failed["error"] and "\n" not in failed["error"] and not (tmp_path / "x.mp4").exists()
