"""medical/ on real NIfTI: geometry of the upscaled grid, slice-wise SR through the engine, intensities, refusals,
and the shipped grey models against cubic on a head they never saw."""
import nibabel as nib
import numpy as np
import pytest
import torch

from medical.intensity import cast_like, robust_window
from medical.nifti_io import VolumeError, read_nifti, write_nifti
from medical.slicewise import cubic_upscale, upscale_in_plane, upscale_through_plane
from medical.volume import Volume, resampled_affine, upscaled_affine
from srstream.engine import Upscaler
from training.degrade import bicubic_downsample

from assets import DATA, SHEAR


def voxel_centres_agree(old: np.ndarray, new: np.ndarray, factors) -> float:
    """Max distance (mm) between each old voxel centre and the mean of the new voxel centres it was split into."""
    worst = 0.0
    for ijk in [(0, 0, 0), (3, 5, 7), (10, 2, 1)]:
        old_xyz = old @ np.array([*ijk, 1.0])
        subs = [np.arange(i * r, i * r + r) for i, r in zip(ijk, factors)]
        grid = np.stack(np.meshgrid(*subs, indexing="ij"), -1).reshape(-1, 3)
        new_xyz = (new @ np.c_[grid, np.ones(len(grid))].T).T.mean(axis=0)
        worst = max(worst, float(np.abs(new_xyz - old_xyz).max()))
    return worst


@pytest.mark.parametrize("factors", [(2, 2, 1), (4, 4, 1), (1, 1, 4), (2, 1, 3)])
def test_upscaled_affine_keeps_voxel_centres_on_an_oblique_volume(factors):
    affine = nib.load(str(SHEAR)).affine
    new = upscaled_affine(affine, factors)
    assert voxel_centres_agree(affine, new, factors) < 1e-9
    spacing_old = np.linalg.norm(affine[:3, :3], axis=0)
    assert np.allclose(np.linalg.norm(new[:3, :3], axis=0), spacing_old / np.array(factors))


def test_nifti_round_trip_keeps_geometry_codes_and_dtype(tmp_path):
    vol = read_nifti(SHEAR)
    assert vol.dtype == np.uint8 and vol.meta["sform_code"] == 2 and vol.shape == (306, 422, 54)
    assert vol.data.min() == -1024  # uint8 stored with a slope and intercept: real values in HU
    assert write_nifti(vol, tmp_path / "copy.nii.gz") == 0
    img, src = nib.load(str(tmp_path / "copy.nii.gz")), nib.load(str(SHEAR))
    assert np.allclose(img.affine, vol.affine, atol=1e-5) and img.get_data_dtype() == np.uint8
    assert int(img.header["sform_code"]) == 2 and int(img.header["qform_code"]) == 2
    assert (img.dataobj.slope, img.dataobj.inter) == (src.dataobj.slope, src.dataobj.inter) != (1.0, 0.0)
    assert np.array_equal(np.asarray(img.dataobj.get_unscaled()), np.asarray(src.dataobj.get_unscaled()))


def test_rgb_and_4d_niftis_are_refused_clearly(tmp_path):
    with pytest.raises(VolumeError, match=r"ct_perfusion\.nii\.gz: .* not a scalar volume"):
        read_nifti(DATA / "mri" / "ct_perfusion.nii.gz")
    four = tmp_path / "four.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 2), np.int16), np.eye(4)), str(four))
    with pytest.raises(VolumeError, match=r"four\.nii\.gz: 4-D \(2 volumes\)"):
        read_nifti(four)
    assert read_nifti(four, volume_index=1).shape == (4, 4, 3)


def _crop(vol: Volume, size=(40, 48, 6)) -> Volume:
    i0, j0 = 130, 180
    data = vol.data[i0:i0 + size[0], j0:j0 + size[1], 20:20 + size[2]]
    affine = vol.affine.copy()
    affine[:3, 3] = (vol.affine @ np.array([i0, j0, 20, 1.0]))[:3]  # the crop's first voxel, same orientation
    return Volume(data, affine, vol.source, vol.dtype, vol.meta)


def test_in_plane_sr_on_a_real_volume_has_the_right_grid_and_stays_faithful(tmp_path):
    vol = _crop(read_nifti(SHEAR))
    out = upscale_in_plane(vol, Upscaler("fast-x4", backend="cpu", batch_size=6), axis=2, progress=False)
    assert out.shape == (160, 192, 6)
    assert np.allclose(out.spacing, (vol.spacing[0] / 4, vol.spacing[1] / 4, vol.spacing[2]))
    assert voxel_centres_agree(vol.affine, out.affine, (4, 4, 1)) < 1e-9
    # Downsampling the SR volume by area must give back the input closely (it is an upscaling, not a new image).
    back = out.data.reshape(40, 4, 48, 4, 6).mean(axis=(1, 3))
    assert np.abs(back - vol.data).mean() < 0.1 * (vol.data.max() - vol.data.min())
    assert write_nifti(out, tmp_path / "sr.nii.gz") == 0
    img = nib.load(str(tmp_path / "sr.nii.gz"))
    assert img.get_data_dtype() == np.uint8 and img.shape == (160, 192, 6)
    assert np.abs(img.get_fdata() - out.data).max() <= abs(img.dataobj.slope) / 2 + 1e-6


def test_through_plane_only_touches_the_slice_axis():
    vol = _crop(read_nifti(SHEAR), (24, 28, 5))
    out = upscale_through_plane(vol, Upscaler("fast-x4", backend="cpu", batch_size=8), axis=2, progress=False)
    assert out.shape == (24, 28, 20)
    assert np.allclose(out.spacing[:2], vol.spacing[:2]) and np.isclose(out.spacing[2], vol.spacing[2] / 4)
    assert voxel_centres_agree(vol.affine, out.affine, (1, 1, 4)) < 1e-9


def test_intensities_outside_the_window_are_kept_not_clipped(fast_x4):
    rng = np.random.default_rng(0)
    data = rng.normal(40, 10, (16, 16, 3))
    data[3, 3, 1] = 3000.0  # a real bright outlier (HU of metal, say)
    window = robust_window(data)
    assert window.hi < 3000
    assert np.allclose(window.inverse(window.forward(data)), data)
    vol = Volume(data, np.eye(4), "synthetic-outlier", np.dtype(np.float32), {})
    out = upscale_in_plane(vol, fast_x4, progress=False)
    assert out.data.max() > 2000  # the outlier survives, through the cubic fallback
    values, clipped = cast_like(np.array([-5.0, 100.4, 300.0]), np.dtype(np.uint8))
    assert values.tolist() == [0, 100, 255] and clipped == 2


def test_cubic_upscale_keeps_constants_and_shapes():
    data = np.full((5, 6, 3), 7.0)
    up = cubic_upscale(data, (2, 1, 3))
    assert up.shape == (10, 6, 9) and np.allclose(up, 7.0)


def test_training_slices_are_exported_windowed_and_skip_background(tmp_path):
    from medical.slices import export_slices
    from training.data import HRCrops

    vol = _crop(read_nifti(SHEAR), (40, 48, 6))
    path = tmp_path / "crop.nii.gz"
    write_nifti(vol, path)
    count = export_slices(path, tmp_path / "slices", min_size=6, min_foreground=0.0)
    assert count == 6  # 2.37 mm slices over 0.48 mm pixels: only the sharp (in-plane) slices train
    crops = HRCrops([tmp_path / "slices"], patch_size=6, channels=1)
    assert crops[0].shape == (1, 6, 6)
    head = tmp_path / "head.nii.gz"  # 1 mm isotropic: slices along all three axes
    t1 = read_nifti(DATA / "mri" / "t1_head_crop.nii.gz")
    write_nifti(Volume(t1.data[20:28, 20:30, 10:22], t1.affine, t1.source, t1.dtype, t1.meta), head)
    assert export_slices(head, tmp_path / "iso", min_size=6, min_foreground=0.0) == 8 + 10 + 12


def test_self_supervised_fine_tuning_trains_a_copy_on_the_volume_only():
    import torch

    from medical.self_supervised import fine_tune
    from srstream.models import load_model

    vol = _crop(read_nifti(SHEAR), (48, 48, 4))
    spec = load_model("fast-x4")
    before = [p.detach().clone() for p in spec.module.parameters()]
    tuned, log = fine_tune(spec, vol, axis=2, seconds=2.0, patch=32, batch=4)
    assert log["steps"] > 0 and tuned.name == "fast-x4+self"
    assert all(torch.equal(a, b) for a, b in zip(before, spec.module.parameters()))  # the original is untouched
    assert not all(torch.equal(a, b) for a, b in zip(before, tuned.module.parameters()))
    out = upscale_through_plane(vol, Upscaler(tuned, backend="cpu"), axis=2, progress=False)
    assert out.shape == (48, 48, 16)


T1_CROP = DATA / "mri" / "t1_head_crop.nii.gz"  # a 64x64x32 crop of the evaluation volume: never trained on


def _psnr(test: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(ref.max() ** 2 / np.mean((test - ref) ** 2)))


def test_mri_x2_beats_cubic_in_plane_on_an_unseen_head():
    vol = read_nifti(T1_CROP)
    slices = torch.from_numpy(np.moveaxis(vol.data, 2, 0).astype(np.float32))[:, None]
    lr = np.moveaxis(bicubic_downsample(slices, 2)[:, 0].double().numpy(), 0, 2)
    small = Volume(lr, vol.affine, vol.source, vol.dtype)
    sr = upscale_in_plane(small, Upscaler("mri-x2", backend="cpu"), progress=False)
    assert sr.shape == vol.shape
    gain = _psnr(sr.data, vol.data) - _psnr(cubic_upscale(lr, (2, 2, 1)), vol.data)
    assert gain > 1.0, gain  # measured +1.61 dB on this crop, +1.46 dB on the whole volume


def test_mri_thick_x4_restores_thick_slices_better_than_cubic():
    vol = read_nifti(T1_CROP)
    thick = vol.data.reshape(64, 64, 8, 4).mean(axis=3)  # 4 neighbouring slices averaged: a 4 mm slab
    # A slab of 4 slices is centred on the mean of their centres, 1.5 slices in.
    small = Volume(thick, resampled_affine(vol.affine, 2, first=1.5, step=4), vol.source, vol.dtype)
    upscaler = Upscaler("mri-thick-x4", backend="cpu")
    sr = upscale_through_plane(small, upscaler, axis=2, progress=False)
    assert sr.shape == vol.shape and np.allclose(sr.affine, vol.affine, atol=1e-5)  # back on the original grid
    gain = _psnr(sr.data, vol.data) - _psnr(cubic_upscale(thick, (1, 1, 4)), vol.data)
    assert gain > 0.6, gain  # measured +1.10 dB on this crop, +0.92 dB on the whole volume
    with pytest.raises(ValueError, match="restores thick slices: use it through-plane"):
        upscale_in_plane(small, upscaler, progress=False)


def test_self_supervised_fine_tuning_of_the_thick_slice_model_learns_slab_blur():
    from medical.self_supervised import fine_tune
    from srstream.models import load_model

    vol = read_nifti(T1_CROP)
    thick = Volume(vol.data.reshape(64, 64, 8, 4).mean(axis=3), vol.affine, vol.source, vol.dtype)
    tuned, log = fine_tune(load_model("mri-thick-x4"), thick, axis=2, seconds=2.0, patch=32, batch=4)
    assert log["steps"] > 0 and log["patch"] % 4 == 0
    out = upscale_through_plane(thick, Upscaler(tuned, backend="cpu"), axis=2, progress=False)
    assert out.shape == (64, 64, 32)


def test_slab_training_degradation_is_what_through_plane_inference_starts_from():
    from training.degrade import degrade

    vol = read_nifti(T1_CROP)
    plane = vol.data[:, 20, :].astype(np.float32) / 255  # (i, k): k is the slice axis
    thick = plane.reshape(64, 8, 4).mean(axis=2)
    inference = cubic_upscale(thick[..., None], (1, 4, 1))[..., 0]  # what upscale_through_plane feeds the model
    training = degrade(torch.from_numpy(plane.T.copy())[None, None], 4, "slab")[0, 0].numpy().T  # height = k
    assert np.abs(inference.clip(0, 1) - training).max() < 1e-5
