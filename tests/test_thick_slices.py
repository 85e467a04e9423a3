"""Thick slices as scanners make them: grids for non-integer ratios and gaps (against hand-computed ones), slice
profiles (against averages by hand on a real volume), SliceThickness read from real and rebuilt DICOM series, the
profile estimate, srmed's report, and a real crop brought back better than cubic."""
import json
import math
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
import torch

from medical.cli import main as srmed
from medical.dicom_read import find_series, read_series
from medical.nifti_io import read_nifti, write_nifti
from medical.profile import choose_profile
from medical.slicewise import resample_axis, upscale_through_plane
from medical.thick import thicken
from srstream.engine import Upscaler
from training.acquisition import Acquisition, cubic_matrix, profile_matrix, simulate, target_grid
from training.degrade import cubic_stretch

from assets import GE, HEAD


def test_target_grids_match_hand_computed_ones():
    # 12 slices of 2.5 mm -> 1 mm: 30 slices covering the same 30 mm, centred: first centre 0.5 mm inside the
    # extent, i.e. at input index -0.5 + 0.5 / 2.5 = -0.3, then every 0.4 of an input slice.
    m, positions = target_grid(12, 2.5, 1.0)
    assert m == 30 and positions == pytest.approx(-0.3 + 0.4 * np.arange(30))
    # 15 slices every 5 mm -> 2.2 mm: 75 / 2.2 = 34.09 -> 34 slices (74.8 mm), centred on the 75 mm extent.
    m, positions = target_grid(15, 5.0, 2.2)
    assert m == 34 and positions[0] == pytest.approx(7 - 16.5 * 0.44) and np.diff(positions) == pytest.approx(0.44)
    # An integer ratio is the old x r grid exactly, and cubic on it is torch's bicubic.
    m, positions = target_grid(8, 4.0, 1.0)
    assert m == 32 and positions == pytest.approx((np.arange(32) + 0.5) / 4 - 0.5)
    x = torch.rand(5, 8, dtype=torch.float64)
    assert torch.allclose(x @ torch.from_numpy(cubic_matrix(8, positions)).T, cubic_stretch(x, 4))


def test_through_plane_geometry_is_exact_for_a_non_integer_ratio_and_a_gap():
    volume = read_nifti(HEAD)
    thick, _ = thicken(volume, 2, Acquisition(2.5, 2.5))
    up = Upscaler("mri-thick-x4", backend="cpu")
    result = upscale_through_plane(thick, up, axis=2, progress=False, spacing=1.0)
    n = thick.shape[2]
    m = round(n * 2.5)
    assert result.shape == (64, 64, m)
    expected = thick.affine.copy()
    expected[:3, 2] = thick.affine[:3, 2] / 2.5
    expected[:3, 3] = thick.affine[:3, 3] + thick.affine[:3, 2] * ((n - 1) / 2 - (m - 1) / 2 / 2.5)
    assert np.allclose(result.affine, expected, atol=1e-9)
    centre = lambda v: v.affine @ np.array([0, 0, (v.shape[2] - 1) / 2, 1])  # noqa: E731
    assert np.allclose(centre(result), centre(thick))  # the same extent, centred
    # The real gap series: 15 slices 5 mm apart, 3 mm thick -> 2.2 mm.
    ge = read_series(find_series(GE)[0])
    out = upscale_through_plane(ge, up, axis=2, progress=False, spacing=2.2)
    assert out.shape[2] == 34 and out.spacing[2] == pytest.approx(2.2)
    assert np.allclose(centre(out), centre(ge))


def test_profile_simulation_equals_averages_by_hand_on_a_real_volume():
    volume = read_nifti(HEAD)
    data = volume.data.astype(np.float64)
    # 4 mm box: thick slice k is the mean of fine slices 4k .. 4k + 3.
    thick, covered = thicken(volume, 2, Acquisition(4, 4, "box"))
    assert covered == slice(0, 32) and thick.shape[2] == 8
    for k in range(8):
        assert np.allclose(thick.data[..., k], data[..., 4 * k:4 * k + 4].mean(axis=-1), rtol=1e-5, atol=1e-3)
    # 2 mm slices every 3 mm: a 2 mm box centred on a fine voxel takes it whole and half of each neighbour.
    thick, covered = thicken(volume, 2, Acquisition(3, 2, "box"))
    centres = [round(c) for c in (np.linalg.inv(volume.affine) @ thick.affine @
                                       np.stack([np.zeros(10), np.zeros(10), np.arange(10), np.ones(10)]))[2]]
    for k, c in enumerate(centres):
        by_hand = 0.25 * data[..., c - 1] + 0.5 * data[..., c] + 0.25 * data[..., c + 1]
        assert np.allclose(thick.data[..., k], by_hand, rtol=1e-5, atol=1e-3)
    # A Gaussian of FWHM 2.5 mm: each fine voxel weighs the integral of the profile over its millimetre.
    sigma = 2.5 / (2 * math.sqrt(2 * math.log(2)))
    weights = [0.5 * (math.erf((j + 0.5 - 10.0) / (sigma * math.sqrt(2))) -
                      math.erf((j - 0.5 - 10.0) / (sigma * math.sqrt(2)))) for j in range(32)]
    row = profile_matrix(32, np.array([10.0]), Acquisition(2.5, 2.5, "gaussian"))[0]
    assert np.allclose(row, np.array(weights) / sum(weights), atol=1e-12)
    fine = torch.from_numpy(data)
    assert np.allclose(simulate(fine, Acquisition(2.5, 2.5, "gaussian"), first=10.0, dim=2)[..., 0].numpy(),
                       np.tensordot(data, row, axes=([2], [0])))


def _rebuilt_series(tmp_path, spacing: float, thickness: float):
    """The real GE slices as a new series, slices `spacing` apart and SliceThickness `thickness`."""
    out = tmp_path / "rebuilt"
    out.mkdir()
    files = sorted(GE.glob("*.dcm"))
    uid = pydicom.uid.generate_uid()
    for n, path in enumerate(files):
        ds = pydicom.dcmread(path, force=True)
        orientation = np.array(ds.ImageOrientationPatient, float)
        normal = np.cross(orientation[:3], orientation[3:])
        origin = np.array(pydicom.dcmread(files[0], force=True).ImagePositionPatient, float)
        ds.ImagePositionPatient = [f"{v:.4f}" for v in origin + normal * spacing * n]
        ds.SliceThickness = f"{thickness}"
        ds.SpacingBetweenSlices = f"{spacing}"
        ds.SeriesInstanceUID = uid
        ds.save_as(out / path.name)
    return out


def test_a_dicom_series_whose_thickness_is_not_its_spacing_is_read_right(tmp_path):
    ge = read_series(find_series(GE)[0])
    assert ge.spacing[2] == pytest.approx(5.0) and ge.meta["slice_thickness"] == pytest.approx(3.0)  # a real gap
    overlapping = read_series(find_series(_rebuilt_series(tmp_path, 2.5, 4.0))[0])
    assert overlapping.spacing[2] == pytest.approx(2.5) and overlapping.meta["slice_thickness"] == pytest.approx(4.0)
    assert np.array_equal(overlapping.data, ge.data)


def test_srmed_reports_the_acquisition_and_takes_any_spacing(tmp_path):
    assert srmed(["upscale", str(GE), "-o", str(tmp_path / "a"), "--through-plane", "--spacing", "2.2",
                  "-m", "mri-thick-x4", "-q", "--format", "nifti"]) == 0
    report = json.loads(next((tmp_path / "a").glob("ge_epi_vol1_*.json")).read_text())
    axis = report["slice_axis"]
    assert axis["spacing_mm"] == pytest.approx(5.0) and axis["thickness_mm"] == pytest.approx(3.0)
    assert axis["thickness_from"] == "SliceThickness" and axis["target_spacing_mm"] == pytest.approx(2.2)
    assert axis["profile"] in ("box", "gaussian") and axis["profile_evidence"]["chosen_by"] == "modality default"
    assert report["output_shape"] == [64, 64, 34] and report["output_spacing_mm"][2] == pytest.approx(2.2)
    # NIfTI has no thickness: it is the spacing unless --slice-thickness says otherwise.
    thick, _ = thicken(read_nifti(HEAD), 2, Acquisition(2.5, 2.5))
    write_nifti(thick, tmp_path / "thick.nii.gz", "test")
    assert srmed(["upscale", str(tmp_path / "thick.nii.gz"), "-o", str(tmp_path / "b"), "--through-plane",
                  "--scale", "2.5", "--slice-thickness", "2", "--profile", "box", "-m", "mri-thick-x4", "-q"]) == 0
    axis = json.loads((tmp_path / "b" / "thick.json").read_text())["slice_axis"]
    assert axis["thickness_mm"] == 2 and axis["thickness_from"] == "--slice-thickness"
    assert axis["target_spacing_mm"] == pytest.approx(1.0) and axis["profile"] == "box"
    assert read_nifti(tmp_path / "b" / "thick.nii.gz").shape == (64, 64, 30)


def test_srmed_self_supervised_tunes_each_kind_of_model_for_its_own_task(tmp_path):
    # In-plane x2 (zero-shot on the volume's own slices), an x2 model through-plane (x2 as SMORE did), and the
    # any-ratio model (the acquisition): each tunes, runs and reports; the thickness only on the slice axis.
    runs = {"in": [], "x2": ["--through-plane", "--scale", "2", "-m", "mri-x2"],
            "thick": ["--through-plane", "--spacing", "0.8", "--axis", "0"]}
    for name, extra in runs.items():
        assert srmed(["upscale", str(HEAD), "-o", str(tmp_path / name), "--self-supervised", "2", "-q",
                      *extra]) == 0, name
        report = json.loads((tmp_path / name / "t1_head_crop.json").read_text())
        assert report["self_supervised"]["steps"] > 0, name
    assert report["self_supervised"]["acquisition_px"] is not None  # the any-ratio model learnt the acquisition
    assert report["slice_axis"]["thickness_from"].startswith("the slice spacing")
    assert read_nifti(tmp_path / "in" / "t1_head_crop.nii.gz").shape == (128, 128, 32)
    assert read_nifti(tmp_path / "x2" / "t1_head_crop.nii.gz").shape == (64, 64, 64)


@pytest.mark.parametrize("args, message", [
    (["--in-plane", "--spacing", "1"], "cannot go with --in-plane"),
    (["--through-plane", "--spacing", "1", "--scale", "2"], "give one"),
    (["--through-plane", "--spacing", "-1"], "must be a positive number"),
    (["--through-plane", "--slice-thickness", "inf"], "must be a positive number"),
    (["--through-plane", "--self-supervised", "inf"], "SECONDS, auto or off"),
])
def test_srmed_refuses_contradictory_slice_options(tmp_path, capsys, args, message):
    assert srmed(["upscale", str(HEAD), "-o", str(tmp_path / "out"), *args]) == 1
    assert message in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_the_profile_estimate_decides_only_on_enough_evidence():
    small = read_nifti(HEAD)  # too few thick slices to tell: the modality's default, and the reason
    thick, _ = thicken(small, 2, Acquisition(2.5, 2.5))
    profile, evidence = choose_profile(thick, 2, 2.5, 2.5)
    assert profile == "gaussian" and evidence["chosen_by"] == "modality default" and "too few" in evidence["reason"]
    assert choose_profile(thick, 2, 2.5, 2.5, "box") == ("box", {"chosen_by": "--profile"})


@pytest.mark.parametrize("acquisition", [Acquisition(2.5, 2.5, "box"), Acquisition(3, 2, "box")],
                         ids=["2.5mm", "2mm-every-3mm"])
def test_a_real_crop_comes_back_better_than_cubic(acquisition):
    volume = read_nifti(HEAD)
    thick, covered = thicken(volume, 2, acquisition)
    truth = volume.data[..., covered]
    up = Upscaler("mri-thick", backend="cpu")
    result = upscale_through_plane(thick, up, axis=2, progress=False, spacing=1.0)
    _, positions = target_grid(thick.shape[2], acquisition.spacing, 1.0)
    cubic = resample_axis(thick.data, 2, positions)
    peak = truth.max()
    psnr = lambda x: 10 * np.log10(peak ** 2 / np.mean((x - truth) ** 2))  # noqa: E731
    assert psnr(result.data) > psnr(cubic) + 0.4, (psnr(result.data), psnr(cubic))  # measured: +0.68, +0.56


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="needs Debian's dicom3tools")
def test_a_derived_series_passes_dciodvfy(tmp_path):
    assert srmed(["upscale", str(GE), "-o", str(tmp_path), "--format", "dicom", "-q"]) == 0
    series = next(p for p in tmp_path.iterdir() if p.is_dir())
    files = sorted(series.glob("*.dcm"))
    source_errors = subprocess.run(["dciodvfy", str(next(GE.glob("*.dcm")))], capture_output=True,
                                   text=True).stderr
    assert "Laterality" in source_errors  # the source has the error (an empty Laterality) we must not copy
    for path in (files[0], files[len(files) // 2], files[-1]):
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], errors
