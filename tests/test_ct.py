"""CT through srmed, on six real slices of a thin head CT (GE LightSpeed VCT, 512x512, 1.25 mm, int16 with
RescaleIntercept -1024, padding -3024 HU outside the field of view): Hounsfield units survive read -> write exactly,
and read -> upscale -> write within the model's error (air about -1000, bone above +700, nothing out of range),
stored as the scanner stored them; dcm2niix agrees with our reader on what we wrote."""
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
from medical.dicom_read import find_series, read_series
from medical.dicom_write import write_dicom_series

from assets import CT


@pytest.fixture(scope="module")
def source():
    return read_series(find_series(CT)[0])


def test_hounsfield_units_survive_read_and_write_exactly(source, tmp_path):
    assert source.meta["modality"] == "CT" and source.shape == (512, 512, 6)
    fov = source.data > -1500  # the scanner pads outside its circular field of view with -3024 HU
    assert -1010 < np.median(source.data[fov & (source.data < -900)]) < -990  # air
    assert (source.data[fov] > 700).mean() > 0.01  # skull
    write_dicom_series(source, source, tmp_path / "copy", "copy")
    again = read_series(find_series(tmp_path / "copy")[0])
    assert np.array_equal(again.data, source.data) and np.allclose(again.affine, source.affine)
    first = pydicom.dcmread(next((tmp_path / "copy").glob("*.dcm")))
    assert (first.PixelRepresentation, float(first.RescaleIntercept), float(first.RescaleSlope)) == (1, -1024, 1)
    if shutil.which("dcm2niix"):
        subprocess.run(["dcm2niix", "-f", "ct", "-o", str(tmp_path), str(tmp_path / "copy")], check=True,
                       capture_output=True, timeout=120)
        theirs = nib.load(tmp_path / "ct.nii").get_fdata()
        assert np.array_equal(np.sort(theirs.ravel()), np.sort(source.data.ravel()))  # same HU (their axes)


def test_hounsfield_units_through_an_in_plane_upscale(source, tmp_path):
    assert main(["upscale", str(CT), "-o", str(tmp_path), "--in-plane", "--backend", "cpu", "-q"]) == 0
    (report,) = [json.loads(p.read_text()) for p in tmp_path.glob("*.json") if p.name != "summary.json"]
    out = read_series(find_series(Path(report["output"]))[0])
    assert out.shape == (1024, 1024, 6) and report["model"] == "mri-x2"
    assert source.data.min() <= out.data.min() and out.data.max() <= source.data.max()  # nothing invented
    back = out.data.reshape(512, 2, 512, 2, 6).mean(axis=(1, 3))  # each source pixel's four
    fov = (source.data > -1500) & (back > -1500)
    air, bone, tissue = fov & (source.data < -900), fov & (source.data > 700), fov & (np.abs(source.data) < 100)
    assert np.median(back[air]) < -950 and (back[bone] > 700).mean() > 0.9
    error = np.abs(back - source.data)
    assert np.median(error[tissue]) < 15 and np.median(error[fov]) < 15  # HU, the model's error
    first = pydicom.dcmread(next(Path(report["output"]).glob("*.dcm")))
    assert (first.PixelRepresentation, float(first.RescaleIntercept)) == (1, -1024) and first.Modality == "CT"


def test_ct_slices_coarser_than_its_pixels_go_through_plane_by_default_with_hu_kept(source, tmp_path):
    # 1.25 mm slices over 0.47 mm pixels are 2.6x: refined through-plane to about the pixel spacing.
    assert main(["upscale", str(CT), "-o", str(tmp_path), "--backend", "cpu", "-q"]) == 0
    (report,) = [json.loads(p.read_text()) for p in tmp_path.glob("*.json") if p.name != "summary.json"]
    assert report["mode"] == "through-plane" and "over 1.5x" in report["mode_reason"]
    assert report["model"] == "ct-thick"  # the CT model, by the series' modality
    assert report["slice_axis"]["target_spacing_mm"] == pytest.approx(0.474609)
    out = read_series(find_series(Path(report["output"]))[0])
    assert out.shape[:2] == (512, 512) and out.spacing[2] == pytest.approx(0.474609, abs=1e-4)
    assert source.data.min() <= out.data.min() and out.data.max() <= source.data.max()
    fov = (source.data > -1500).all(axis=2)  # the field of view, the same on every slice
    air = fov & (source.data < -900).all(axis=2)  # air on every source slice stays air between them
    bone = fov & (source.data > 1000).all(axis=2)  # and dense bone stays bone
    assert np.median(out.data[air]) < -950 and (out.data[bone] > 700).mean() > 0.95
