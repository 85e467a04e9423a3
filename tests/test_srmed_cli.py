"""`srmed upscale` end to end on real data: a DICOM series and a NIfTI volume, a bad input among them,
JSON reports, skipping finished volumes, previews, the thick-slice model, Ray, pydicom's and nibabel's own test
files."""
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medical.cli import main
from medical.dicom_read import find_series, read_series
from medical.nifti_io import write_nifti

from assets import DATA, GE
from conftest import free_port


def test_batch_of_volumes_with_a_bad_one(tmp_path, capsys):
    nifti = tmp_path / "epi.nii.gz"
    write_nifti(read_series(find_series(GE)[0]), nifti)
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    out = tmp_path / "out"
    args = ["upscale", str(GE), str(nifti), str(bad), "-o", str(out), "--model", "fast-x4", "--scale", "4",
            "--backend", "cpu", "--through-plane", "--preview", "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "broken.nii.gz: not a readable NIfTI file" in err
    reports = sorted(out.glob("*.json"))
    names = [p.name for p in reports]
    assert "summary.json" in names and "epi.json" in names
    epi = json.loads((out / "epi.json").read_text())
    assert epi["input_shape"] == [64, 64, 15] and epi["output_shape"] == [64, 64, 60]
    assert np.allclose(epi["output_spacing_mm"], [3.75, 3.75, 1.25])
    assert epi["format"] == "nifti" and nib.load(epi["output"]).shape == (64, 64, 60)
    dicom_report = json.loads(next(p for p in reports if p.name.startswith("ge_epi_vol1")).read_text())
    written = out / dicom_report["output"].split("/")[-1]
    assert dicom_report["format"] == "dicom" and len(list(written.glob("*.dcm"))) == 60
    assert sorted(Image.open(epi["preview"]).size) == [64, 60 + 4 + 60]  # before | after, side by side
    summary = json.loads((out / "summary.json").read_text())
    assert summary["done"] == 2 and summary["failed"] == 1
    # Run again: finished volumes are skipped, the broken one fails again, nothing is rewritten.
    stamp = (out / "epi.json").stat().st_mtime_ns
    assert main(args) == 1
    assert (out / "epi.json").stat().st_mtime_ns == stamp
    assert json.loads((out / "summary.json").read_text())["skipped"] == 2


def test_missing_model_or_input_is_one_clear_line(tmp_path, capsys):
    assert main(["upscale", str(tmp_path / "nothing.nii.gz"), "-o", str(tmp_path / "o"), "--model", "fast-x4",
                 "--scale", "4"]) == 1
    assert "nothing.nii.gz: no such file" in capsys.readouterr().err
    assert main(["upscale", str(GE), "-o", str(tmp_path / "o"), "--scale", "8"]) == 1
    assert "mri-x8: no such model" in capsys.readouterr().err


def test_through_plane_picks_the_thick_slice_model_and_takes_tta(tmp_path, capsys):
    src = nib.load(DATA / "mri" / "t1_head_crop.nii.gz")
    small = tmp_path / "head.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(src.dataobj)[16:48, 16:48, :8], src.affine), small)
    out = tmp_path / "out"
    assert main(["upscale", str(small), "-o", str(out), "--scale", "4", "--through-plane", "--backend", "cpu",
                 "--tta", "-q"]) == 0
    report = json.loads((out / "head.json").read_text())
    assert report["model"] == "mri-thick" and report["scale"] == 4 and report["output_shape"] == [32, 32, 32]
    assert report["tta"] is True
    assert nib.load(report["output"]).header.get_zooms() == (1.0, 1.0, 0.25)
    assert main(["upscale", str(small), "-o", str(tmp_path / "o2"), "--scale", "4", "--model", "mri-thick-x4",
                 "--in-plane", "--backend", "cpu", "-q"]) == 1
    assert "restores thick slices: use it with --through-plane" in capsys.readouterr().err
    assert main(["upscale", str(small), "-o", str(tmp_path / "o3"), "--model", "mri-thick-x4", "--backend", "cpu",
                 "-q"]) == 0  # a thick-slice model named is a through-plane run
    assert json.loads((tmp_path / "o3" / "head.json").read_text())["mode"] == "through-plane"


def test_two_volumes_as_ray_tasks(tmp_path, capsys):
    pytest.importorskip("ray")
    src = nib.load(DATA / "mri" / "t1_head_crop.nii.gz")
    data = np.asarray(src.dataobj)
    inputs = []
    for n, part in enumerate((data[:32, :32, :6], data[32:, 32:, 10:14])):
        path = tmp_path / f"head{n}.nii.gz"
        nib.save(nib.Nifti1Image(part, src.affine), path)
        inputs.append(str(path))
    out = tmp_path / "out"
    assert main(["upscale", *inputs, "-o", str(out), "--scale", "2", "--backend", "cpu", "--ray", "-q"]) == 0
    for n, depth in enumerate((6, 4)):
        report = json.loads((out / f"head{n}.json").read_text())
        assert report["model"] == "mri-x2" and report["output_shape"] == [64, 64, depth]
        assert nib.load(report["output"]).shape == (64, 64, depth)
    assert json.loads((out / "summary.json").read_text())["done"] == 2


def test_a_ray_address_where_no_cluster_answers_is_one_line(tmp_path, capsys):
    pytest.importorskip("ray")
    port = free_port()  # nothing listens there
    out = tmp_path / "out"
    code = main(["upscale", str(DATA / "mri" / "t1_head_crop.nii.gz"), "-o", str(out), "--scale", "2",
                 "--backend", "cpu", "--ray", f"127.0.0.1:{port}", "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith(f"srmed: error: --ray 127.0.0.1:{port}: no Ray cluster answers there")
    assert len(err.splitlines()) == 1 and list(out.iterdir()) == []


def test_a_volume_too_big_for_memory_fails_before_any_work(tmp_path, capsys):
    header = nib.Nifti1Header()
    header.set_data_shape((4096, 4096, 2048))  # 32 Gi voxels in, 128 Gi out at x2 in-plane
    header.set_data_dtype(np.uint8)
    huge = tmp_path / "huge.nii"
    huge.write_bytes(header.binaryblock + b"\0" * 4)  # the header only: the data are never reached
    small = tmp_path / "small.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(nib.load(DATA / "mri" / "t1_head_crop.nii.gz").dataobj)[:16, :16, :2],
                             np.eye(4)), small)
    out = tmp_path / "out"
    assert main(["upscale", str(huge), str(small), "-o", str(out), "--scale", "2", "--backend", "cpu", "-q"]) == 1
    err = capsys.readouterr().err
    assert "huge.nii: upscaling 4096x4096x2048 by 2x2x1 needs about" in err and "GiB is available" in err
    assert sorted(p.name for p in out.iterdir()) == ["small.json", "small.nii.gz", "summary.json"]


def test_library_test_files_ct_hounsfield_float64_and_4d(tmp_path, capsys):
    """pydicom's and nibabel's own bundled test files, and a float64 diffusion volume, through srmed."""
    import shutil

    import pydicom
    from nibabel.testing import data_path
    from pydicom.data import get_testdata_file

    ct_dir = tmp_path / "ct"
    ct_dir.mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm"), ct_dir / "ct.dcm")  # one CT slice, stored with intercept -1024
    before = (ct_dir / "ct.dcm").read_bytes()
    src = read_series(find_series(ct_dir)[0])
    floatvol = DATA / "mri" / "dwi_b0_float64_crop.nii.gz"
    four_d = Path(data_path) / "example4d.nii.gz"  # (128, 96, 24, 2)
    out = tmp_path / "out"
    args = ["upscale", str(ct_dir), str(floatvol), str(four_d), "-o", str(out), "--scale", "2", "--backend", "cpu",
            "-q"]
    assert main(args) == 0  # the 4-D file too: every volume
    assert nib.load(out / "example4d.nii.gz").shape == (256, 192, 24, 2)
    ct_report = json.loads(next(out.glob("ct_*.json")).read_text())
    ct = read_series(find_series(out / Path(ct_report["output"]).name)[0])
    assert ct.shape == (256, 256, 1)
    assert src.data.min() <= ct.data.min() and ct.data.max() <= src.data.max()  # HU neither clipped nor invented
    assert abs(ct.data.mean() - src.data.mean()) < 5  # HU kept on average
    assert pydicom.dcmread(next((out / Path(ct_report["output"]).name).glob("*.dcm"))).RescaleIntercept == -1024
    assert (ct_dir / "ct.dcm").read_bytes() == before
    img = nib.load(out / "dwi_b0_float64_crop.nii.gz")
    assert img.get_data_dtype() == np.float64 and img.shape == (64, 64, 6)
    assert main(["upscale", str(four_d), "-o", str(tmp_path / "o4"), "--scale", "2", "--volume", "1",
                 "--backend", "cpu", "-q"]) == 0
    assert nib.load(tmp_path / "o4" / "example4d.nii.gz").shape == (256, 192, 24)
