"""The fault and fuzz suite: every damaged input of the corpus (tests/faults.py: MP4, MKV, PNG, JPEG, NIfTI, a DICOM
series, enhanced DICOM; bit flips, truncation, zeroed and duplicated ranges, wrong extensions, huge declared sizes)
goes through its front door under a time limit and must end in a result or a one-line error naming the input:
never a traceback, a hang, or a half-written output."""
import json
import subprocess
import sys

import pytest

from assets import ROOT
from faults import CASES, KINDS, make

pytest.importorskip("nibabel")
pytest.importorskip("pydicom")

VIDEO_SUFFIXES = {".mp4", ".mkv"}


def _command(case: str, source, out_dir) -> dict:
    kind = case.split("-", 1)[0]
    door = KINDS[kind][0]
    if door == "srmed":
        argv = ["upscale", str(source), "-o", str(out_dir), "--backend", "cpu", "-q"]
    else:
        suffix = ".mp4" if source.suffix in VIDEO_SUFFIXES else ".png"
        argv = ["upscale", str(source), str(out_dir / f"out{suffix}"), "-m", "fast-x4", "--backend", "cpu",
                "-t", "0.5", "-q"]
    return {"name": case, "door": door, "argv": argv}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every case made and run once (in one process: torch and the models load once)."""
    work = tmp_path_factory.mktemp("faults")
    commands, places = [], {}
    for case in CASES:
        source = make(case, work / "in")
        out_dir = work / "out" / case
        out_dir.mkdir(parents=True)
        commands.append(_command(case, source, out_dir))
        places[case] = (source, out_dir)
    listing = work / "cases.json"
    listing.write_text(json.dumps(commands))
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "fault_driver.py"), str(listing)], cwd=ROOT,
                         capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    results = json.loads(run.stdout)
    return {case: (results[case], *places[case]) for case in CASES}


def _check_result(door: str, out_dir) -> None:
    """A finished output that reads back."""
    files = [p for p in out_dir.rglob("*") if p.is_file()]
    if door == "srmed":
        import nibabel as nib

        volumes = [p for p in files if p.name.endswith((".nii", ".nii.gz"))]
        dicoms = [p for p in files if p.suffix == ".dcm"]
        assert volumes or dicoms, files
        for path in volumes:
            assert nib.load(path).get_fdata().size > 0
        return
    out = next(p for p in files if p.name.startswith("out"))
    if out.suffix == ".png":
        from PIL import Image

        with Image.open(out) as image:
            assert image.size[0] > 0
    else:
        import av

        with av.open(str(out)) as c:
            assert sum(1 for _ in c.decode(video=0)) >= 1


@pytest.mark.parametrize("case", CASES)
def test_a_damaged_input_ends_in_a_result_or_one_line_error(outcomes, case):
    result, source, out_dir = outcomes[case]
    door = KINDS[case.split("-", 1)[0]][0]
    assert result["crashed"] is None, result["crashed"]
    assert "Traceback" not in result["stderr"], result["stderr"]
    leftovers = [p for p in out_dir.rglob(".*")]
    assert not leftovers, leftovers  # no hidden partial or temporary files
    if result["rc"] == 0:
        _check_result(door, out_dir)
        return
    assert result["rc"] == 1, result
    errors = [line for line in result["stderr"].splitlines() if line.startswith(f"{door}: error: ")]
    assert len(errors) == 1, result["stderr"]
    named = {source.name, source.parent.name} | ({p.name for p in source.iterdir()} if source.is_dir() else set())
    assert any(name in errors[0] for name in named), errors[0]  # says which file
    finished = [p for p in out_dir.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    assert not finished, finished  # nothing left that looks like a result
