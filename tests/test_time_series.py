"""Time series through srmed: the real 10-volume GE EPI series and 4-D NIfTI made from it by dcm2niix come out as
one derived series / one 4-D NIfTI with every volume upscaled by one plan, each volume equal to what it gives alone,
with the 4th dimension's facts (TR, units, temporal positions, acquisition times) and diffusion tables kept."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medical.cli import main

from assets import DATA, DWI, EPI

FAST = ["-m", "fast-x4", "--scale", "4", "--backend", "cpu", "-q"]
needs_dcm2niix = pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix not installed")


def upscale(out: Path, *argv: str) -> dict:
    """`srmed upscale` on argv into `out`; the report of its one input."""
    assert main(["upscale", *argv, "-o", str(out), *FAST]) == 0
    (report,) = [p for p in out.glob("*.json") if p.name != "summary.json"]
    return json.loads(report.read_text())


def dcm2niix(folder: Path, out: Path) -> nib.Nifti1Image:
    """dcm2niix's NIfTI of the one series in `folder` (the reference reader), with its JSON beside it."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dcm2niix", "-z", "y", "-f", "series", "-o", str(out), str(folder)], check=True,
                   capture_output=True, timeout=120)
    return nib.load(out / "series.nii.gz")


def instances(folder: Path) -> list[pydicom.Dataset]:
    return sorted((pydicom.dcmread(p) for p in folder.glob("*.dcm")), key=lambda ds: int(ds.InstanceNumber))


@pytest.fixture(scope="module")
def epi_nifti(tmp_path_factory) -> Path:
    if shutil.which("dcm2niix") is None:
        pytest.skip("dcm2niix not installed")
    folder = tmp_path_factory.mktemp("epi_nifti")
    dcm2niix(EPI, folder)
    return folder / "series.nii.gz"


@needs_dcm2niix
def test_a_dicom_time_series_comes_out_as_one_derived_series_of_every_volume(tmp_path):
    report = upscale(tmp_path / "all", str(EPI))
    assert report["volumes"] == 10 and report["input_shape"] == [64, 64, 15, 10]
    assert report["output_shape"] == [256, 256, 15, 10]
    derived = instances(Path(report["output"]))
    sources = sorted((pydicom.dcmread(p, stop_before_pixels=True) for p in EPI.glob("*.dcm")),
                     key=lambda ds: int(ds.InstanceNumber))
    assert len(derived) == 150 and len({ds.SeriesInstanceUID for ds in derived}) == 1
    # Every instance keeps its own source slice's time: the volumes are in the source's order.
    assert [ds.AcquisitionTime for ds in derived] == [ds.AcquisitionTime for ds in sources]
    assert {int(ds.NumberOfTemporalPositions) for ds in derived} == {10}
    # dcm2niix, reading what we wrote, finds the same 4-D series: 10 volumes, TR 5 s.
    image = dcm2niix(Path(report["output"]), tmp_path / "check")
    assert image.shape == (256, 256, 15, 10) and image.header.get_zooms()[3] == pytest.approx(5.0)
    assert json.loads((tmp_path / "check" / "series.json").read_text())["RepetitionTime"] == pytest.approx(5.0)
    # Each volume is exactly what srmed gives for it alone.
    for index in (0, 7):
        alone = instances(Path(upscale(tmp_path / f"v{index}", str(EPI), "--volume", str(index))["output"]))
        assert len(alone) == 15
        for got, want in zip(derived[index * 15:(index + 1) * 15], alone):
            assert np.array_equal(got.pixel_array, want.pixel_array)
            assert got.ImagePositionPatient == want.ImagePositionPatient


def test_a_4d_nifti_keeps_its_time_axis_and_each_volume_equals_its_own_run(epi_nifti, tmp_path):
    source = nib.load(epi_nifti)
    report = upscale(tmp_path / "all", str(epi_nifti))
    out = nib.load(report["output"])
    assert out.shape == (256, 256, 15, 10) and report["volumes"] == 10
    assert out.header.get_zooms()[3] == source.header.get_zooms()[3] == pytest.approx(5.0)  # TR
    assert out.header.get_xyzt_units() == source.header.get_xyzt_units()
    assert out.get_data_dtype() == source.get_data_dtype()
    assert np.allclose(out.header.get_zooms()[:3], np.array(source.header.get_zooms()[:3]) / [4, 4, 1])
    alone = nib.load(upscale(tmp_path / "v3", str(epi_nifti), "--volume", "3")["output"])
    assert alone.shape == (256, 256, 15)
    assert np.array_equal(np.asarray(out.dataobj[..., 3]), np.asarray(alone.dataobj))
    assert np.allclose(out.affine, alone.affine)


def test_a_volume_out_of_range_is_one_line(epi_nifti, tmp_path, capsys):
    assert main(["upscale", str(epi_nifti), "-o", str(tmp_path / "out"), "--volume", "10", *FAST]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert any("volume 10 does not exist (0..9)" in line and str(epi_nifti) in line for line in err)
    assert not (tmp_path / "out" / "series.nii.gz").exists()




def test_diffusion_tables_go_beside_the_output_and_follow_volume(tmp_path):
    report = upscale(tmp_path / "all", str(DWI))
    out = Path(report["output"])
    assert nib.load(out).shape == (192, 192, 8, 17)
    for ext in (".bval", ".bvec"):
        carried = Path(str(out).replace(".nii.gz", ext))
        assert np.array_equal(np.loadtxt(carried), np.loadtxt(DWI.with_name("dwi_philips_crop" + ext)))
    assert report["gradients"]["vectors"].startswith("unchanged")
    one = upscale(tmp_path / "one", str(DWI), "--volume", "5")
    bvec = np.loadtxt(Path(one["output"].replace(".nii.gz", ".bvec")))
    assert bvec.shape == (3,) and np.array_equal(bvec, np.loadtxt(DWI.with_name("dwi_philips_crop.bvec"))[:, 5])
    assert np.loadtxt(Path(one["output"].replace(".nii.gz", ".bval"))) == 1000


def test_a_gradient_table_that_does_not_fit_the_series_fails_that_input(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(DWI, folder / "dwi.nii.gz")
    shutil.copy(DWI.with_name("dwi_philips_crop.bvec"), folder / "dwi.bvec")
    (folder / "dwi.bval").write_text("0 1000 1000\n")
    assert main(["upscale", str(folder / "dwi.nii.gz"), "-o", str(tmp_path / "out"), *FAST]) == 1
    assert "dwi.bval: 1x3 values for 17 volumes" in capsys.readouterr().err
    assert not (tmp_path / "out" / "dwi.json").exists() and not (tmp_path / "out" / "dwi.nii.gz").exists()


def test_bids_time_series_by_suffix_with_their_tables_pass_the_validator(epi_nifti, tmp_path):
    from test_bids import validator_errors

    root = tmp_path / "ds"
    (root / "sub-01" / "func").mkdir(parents=True)
    (root / "sub-01" / "dwi").mkdir(parents=True)
    shutil.copy(epi_nifti, root / "sub-01" / "func" / "sub-01_task-rest_bold.nii.gz")
    timing = [round(i * 5.0 / 15, 4) for i in range(15)]
    (root / "sub-01" / "func" / "sub-01_task-rest_bold.json").write_text(json.dumps(
        {"TaskName": "rest", "RepetitionTime": 5.0, "SliceTiming": timing}))
    for ext in (".nii.gz", ".bval", ".bvec"):
        shutil.copy(DWI.with_name("dwi_philips_crop" + ext), root / "sub-01" / "dwi" / f"sub-01_dwi{ext}")
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "srstream time series", "BIDSVersion": "1.10.0", "DatasetType": "raw", "License": "CC0",
         "Authors": ["srstream tests"]}))
    (root / "README").write_text("A GE EPI and a Philips DWI from srstream's tests/data.\n")
    (root / "participants.tsv").write_text("participant_id\nsub-01\n")
    out = root / "derivatives" / "srstream"
    assert main(["bids", str(root), str(out), "participant", "--suffix", "bold", "dwi", *FAST]) == 0
    bold = nib.load(out / "sub-01" / "func" / "sub-01_task-rest_desc-sr_bold.nii.gz")
    assert bold.shape == (256, 256, 15, 10) and bold.header.get_zooms()[3] == pytest.approx(5.0)
    sidecar = json.loads((out / "sub-01" / "func" / "sub-01_task-rest_desc-sr_bold.json").read_text())
    assert sidecar["RepetitionTime"] == 5.0 and sidecar["SliceTiming"] == timing  # in-plane: slices as acquired
    assert sidecar["srstream"]["volumes"] == 10
    dwi = out / "sub-01" / "dwi" / "sub-01_desc-sr_dwi"
    assert nib.load(f"{dwi}.nii.gz").shape == (192, 192, 8, 17)
    for ext in (".bval", ".bvec"):
        assert np.array_equal(np.loadtxt(f"{dwi}{ext}"), np.loadtxt(root / "sub-01" / "dwi" / f"sub-01_dwi{ext}"))
    assert validator_errors(out) == []


@needs_dcm2niix
def test_a_siemens_mosaic_time_series_comes_out_as_one_series(tmp_path):
    report = upscale(tmp_path / "out", str(DATA / "dicom" / "si_epi_mosaic"))  # 2 mosaics: 2 volumes of 5 slices
    assert report["volumes"] == 2 and len(instances(Path(report["output"]))) == 10
    assert dcm2niix(Path(report["output"]), tmp_path / "check").shape == (288, 288, 5, 2)
