"""`srmed bids`, the BIDS app, end to end on a small BIDS dataset made from the real volumes in tests/data/mri:
names, geometry and sidecars of the derivatives, selection by entities, the sidecar's SliceThickness through-plane,
skipping on a rerun, one-line errors, and the official BIDS validator on what it writes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medical.cli import main

from assets import DATA, ROOT

# The schema-based BIDS validator (`pip install bids-validator-deno`; .ci/run puts it in .bids-validator/). npm's
# bids-validator 1.x is not used: it knows raw datasets only and rejects every desc- file of a derivatives dataset.
VALIDATOR = Path(os.environ.get("BIDS_VALIDATOR", ROOT / ".bids-validator" / "bin" / "bids-validator-deno"))
FAST = ["-m", "fast-x4", "--scale", "4", "--backend", "cpu", "-q"]
T1 = "sub-01/anat/sub-01_T1w.nii.gz"
T2 = "sub-02/ses-1/anat/sub-02_ses-1_acq-thick_T2w.nii.gz"
T1_OUT = "sub-01/anat/sub-01_desc-sr_T1w"
T2_OUT = "sub-02/ses-1/anat/sub-02_ses-1_acq-thick_desc-sr_T2w"


def _json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def make_dataset(root: Path) -> Path:
    """sub-01: a T1w (a 48x48x12 crop of the 1 mm head, no sidecar); sub-02, session 1: a T2w of 2.37 mm slices
    whose sidecar says 3 mm thick, over a top-level T2w.json that it overrides (BIDS inheritance)."""
    (root / "sub-01" / "anat").mkdir(parents=True)
    (root / "sub-02" / "ses-1" / "anat").mkdir(parents=True)
    head = nib.load(DATA / "mri" / "t1_head_crop.nii.gz")
    nib.save(head.slicer[8:56, 8:56, 10:22], root / T1)
    nib.save(nib.load(DATA / "mri" / "shear_small.nii.gz"), root / T2)
    _json(root / T2.replace(".nii.gz", ".json"), {"SliceThickness": 3.0, "EchoTime": 0.1})
    _json(root / "T2w.json", {"SliceThickness": 2.0, "MagneticFieldStrength": 3})
    _json(root / "dataset_description.json", {"Name": "srstream test heads", "BIDSVersion": "1.10.0",
                                              "DatasetType": "raw", "License": "CC0",
                                              "Authors": ["srstream tests", "tests/data/mri"]})
    (root / "README").write_text("Two volumes from srstream's tests/data/mri, arranged as a BIDS dataset.\n")
    (root / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\n")
    return root


def validator_errors(path: Path) -> list[dict]:
    """The errors (not warnings) the BIDS validator finds in the dataset at `path`."""
    if not VALIDATOR.exists():
        pytest.skip(f"BIDS validator not installed at {VALIDATOR} (.ci/run installs it there; or set BIDS_VALIDATOR)")
    done = subprocess.run([str(VALIDATOR), str(path), "--format", "json"], capture_output=True, text=True,
                          timeout=300)
    issues = json.loads(done.stdout)["issues"]["issues"]
    return [i for i in issues if i["severity"] == "error"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """The dataset, and `srmed bids` run on it once as a BIDS app is run: a process, derivatives inside it."""
    root = make_dataset(tmp_path_factory.mktemp("bids") / "heads")
    out = root / "derivatives" / "srstream"
    done = subprocess.run([sys.executable, "-m", "medical.cli", "bids", str(root), str(out), "participant", *FAST],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    return root, out, done


def test_derivatives_names_geometry_and_sidecars(dataset):
    root, out, done = dataset
    assert done.returncode == 0, done.stderr
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [".bidsignore", "README.md", "dataset_description.json", "sub-01/anat/sub-01_desc-sr_T1w.json",
                     "sub-01/anat/sub-01_desc-sr_T1w.nii.gz", f"{T2_OUT}.json", f"{T2_OUT}.nii.gz", "summary.json"]
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["BIDSVersion"]
    assert description["GeneratedBy"][0]["Name"] == "srstream" and description["GeneratedBy"][0]["Version"]
    assert description["SourceDatasets"] == [{"URL": root.resolve().as_uri()}]
    assert description["DatasetLinks"] == {"raw": "../.."}  # what the sidecars' bids:raw: URIs resolve against
    for source, name in ((T1, T1_OUT), (T2, T2_OUT)):
        src, sr = nib.load(root / source), nib.load(out / f"{name}.nii.gz")
        # In-plane x4: i and j four times finer, over the same extent (first centre 3/8 of a voxel inside).
        assert sr.shape == (src.shape[0] * 4, src.shape[1] * 4, src.shape[2])
        expected = src.affine.copy()
        expected[:3, :2] /= 4
        expected[:3, 3] += src.affine[:3, :2] @ [-0.375, -0.375]
        assert np.allclose(sr.affine, expected, atol=1e-5)
        assert sr.get_data_dtype() == src.get_data_dtype()
        side = json.loads((out / f"{name}.json").read_text())
        assert side["Sources"] == [f"bids:raw:{source}"] and side["SkullStripped"] is False
        assert side["Description"] == "Super-resolution: srstream fast-x4 in-plane x4 axis 2"
        report = side["srstream"]  # srmed's own report of the volume, as `srmed upscale` writes it
        assert report["model"] == "fast-x4" and report["mode"] == "in-plane" and report["input"] == str(root / source)
        assert np.allclose(report["output_spacing_mm"], np.array(src.header.get_zooms()) / [4, 4, 1], atol=1e-5)
    t2 = json.loads((out / f"{T2_OUT}.json").read_text())
    # The source's metadata carried over, the nearest sidecar winning over the top-level one.
    assert t2["SliceThickness"] == 3.0 and t2["EchoTime"] == 0.1 and t2["MagneticFieldStrength"] == 3
    assert json.loads((out / "summary.json").read_text())["done"] == 2


def test_the_bids_validator_passes_the_source_and_the_derivatives(dataset, tmp_path):
    root, out, done = dataset
    assert done.returncode == 0, done.stderr
    assert validator_errors(root) == []  # the test dataset itself is valid BIDS
    assert validator_errors(out) == []
    # And it does look: a copy whose sidecar lacks the field BIDS requires of MRI derivatives fails.
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    side = json.loads((copy / f"{T1_OUT}.json").read_text())
    del side["SkullStripped"]
    _json(copy / f"{T1_OUT}.json", side)
    assert [e["code"] for e in validator_errors(copy)] == ["SIDECAR_KEY_REQUIRED"]


def test_a_rerun_skips_what_is_done_and_group_level_does_nothing(dataset, capsys):
    root, out, done = dataset
    assert done.returncode == 0, done.stderr
    sidecar, image = out / f"{T1_OUT}.json", out / f"{T1_OUT}.nii.gz"
    stamps = sidecar.stat().st_mtime_ns, image.stat().st_mtime_ns
    assert main(["bids", str(root), str(out), "participant", *FAST[:-1]]) == 0
    assert "0 upscaled, 2 already done, 0 failed" in capsys.readouterr().err
    assert (sidecar.stat().st_mtime_ns, image.stat().st_mtime_ns) == stamps
    assert main(["bids", str(root), str(out), "group"]) == 0
    assert "group level: nothing to do" in capsys.readouterr().err


def test_through_plane_selected_by_label_and_suffix_takes_the_sidecar_thickness(tmp_path):
    root = make_dataset(tmp_path / "heads")
    out = tmp_path / "sr"
    assert main(["bids", str(root), str(out), "participant", "--participant-label", "sub-02", "--suffix", "T2w",
                 "--through-plane", "--scale", "4", "--backend", "cpu", "-q"]) == 0
    assert not (out / "sub-01").exists()
    src, sr = nib.load(root / T2), nib.load(out / f"{T2_OUT}.nii.gz")
    assert sr.shape == (40, 48, 24)
    expected = src.affine.copy()  # the slice axis 4 times finer over the same extent
    expected[:3, 2] /= 4
    expected[:3, 3] += src.affine[:3, 2] * -0.375
    assert np.allclose(sr.affine, expected, atol=1e-5)
    side = json.loads((out / f"{T2_OUT}.json").read_text())
    axis = side["srstream"]["slice_axis"]
    assert axis["thickness_mm"] == 3.0 and axis["thickness_from"] == "SliceThickness"  # its sidecar, not 2.37 or 2
    assert axis["spacing_mm"] == pytest.approx(2.370809) and axis["target_spacing_mm"] == pytest.approx(0.592702)
    assert side["Description"] == "Super-resolution: srstream mri-thick through-plane 2.37081 -> 0.592702 mm axis 2"
    assert json.loads((out / "dataset_description.json").read_text())["DatasetLinks"]["raw"] == root.resolve().as_uri()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("srmed: error:")]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_bad_inputs_are_one_line_naming_the_file(tmp_path, capsys):
    root = make_dataset(tmp_path / "heads")
    out = str(tmp_path / "sr")
    assert main(["bids", str(root / "sub-01"), out, "participant", *FAST]) == 1
    assert f"{root / 'sub-01'}: not a BIDS dataset (no dataset_description.json)" in _one_line_error(capsys)
    assert main(["bids", str(root), out, "participant", "--participant-label", "03", *FAST]) == 1
    assert f"{root}: no participant 03 (the dataset has: 01, 02)" in _one_line_error(capsys)
    assert main(["bids", str(root), out, "participant", "--suffix", "FLAIR", *FAST]) == 1
    assert "no NIfTI images match the selection (suffix=['FLAIR'])" in _one_line_error(capsys)
    assert main(["bids", str(root), str(root), "participant", *FAST]) == 1
    assert "the output must not be the source dataset" in _one_line_error(capsys)
    other = tmp_path / "other"
    other.mkdir()
    _json(other / "dataset_description.json", {"Name": "another", "BIDSVersion": "1.10.0"})
    assert main(["bids", str(root), str(other), "participant", *FAST]) == 1
    assert f"{other / 'dataset_description.json'}: {other} holds another dataset" in _one_line_error(capsys)
    assert main(["bids", str(root), out, "participant", "--format", "dicom", *FAST]) == 1
    assert "--format dicom: a BIDS derivatives dataset holds NIfTI images" in _one_line_error(capsys)
    (root / "dataset_description.json").write_text("{not json")
    assert main(["bids", str(root), out, "participant", *FAST]) == 1
    assert f"{root / 'dataset_description.json'}: " in _one_line_error(capsys)


def test_a_broken_sidecar_fails_its_image_only(tmp_path, capsys):
    root = make_dataset(tmp_path / "heads")
    out = tmp_path / "sr"
    broken = root / T2.replace(".nii.gz", ".json")
    broken.write_text('{"SliceThickness": 3.0,')
    assert main(["bids", str(root), str(out), "participant", *FAST]) == 1
    assert f"{broken}: not valid JSON (Expecting" in _one_line_error(capsys)
    assert (out / f"{T1_OUT}.nii.gz").exists() and not (out / f"{T2_OUT}.nii.gz").exists()
    assert json.loads((out / "summary.json").read_text())["failed"] == 1
