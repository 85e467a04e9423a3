"""DICOM series in, checked against dcm2niix on real GE, Siemens mosaic and enhanced multi-frame data, and bad
inputs."""
import shutil
import subprocess

import nibabel as nib
import numpy as np
import pydicom
import pytest

from medical.dicom_read import find_series, read_series
from medical.nifti_io import VolumeError

from assets import ENHANCED, GE, MOSAIC

needs_dcm2niix = pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="needs Debian's dcm2niix")


def dcm2niix(folder, out):
    out.mkdir()
    subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "%s", "-o", str(out), str(folder)], check=True,
                   capture_output=True, timeout=120)
    return [nib.load(str(p)) for p in sorted(out.glob("*.nii"))]


@needs_dcm2niix
@pytest.mark.parametrize("folder", [GE, ENHANCED])
def test_reader_geometry_and_voxels_agree_with_dcm2niix(folder, tmp_path):
    (series,) = find_series(folder)
    vol = read_series(series)
    (ref,) = dcm2niix(folder, tmp_path / "ref")
    assert vol.shape == ref.shape[:3]
    assert np.abs(vol.affine - ref.affine).max() < 1e-3
    assert np.array_equal(vol.data, np.asarray(ref.dataobj, dtype=np.float64).reshape(vol.shape))


def test_reader_is_input_order_blind_and_leaves_files_untouched(tmp_path):
    shuffled = tmp_path / "nested" / "deeper"
    shuffled.mkdir(parents=True)
    files = sorted(GE.glob("*.dcm"))
    for n, f in enumerate(reversed(files)):  # names no longer follow the slice order
        shutil.copy(f, shuffled / f"img{n:02d}.dcm")
    (tmp_path / "notes.txt").write_text("not dicom")
    before = {f.name: f.read_bytes() for f in shuffled.iterdir()}
    a, b = read_series(find_series(tmp_path)[0]), read_series(find_series(GE)[0])
    assert np.array_equal(a.data, b.data) and np.allclose(a.affine, b.affine)
    assert before == {f.name: f.read_bytes() for f in shuffled.iterdir()}


def test_bad_series_are_reported_clearly(tmp_path):
    with pytest.raises(VolumeError, match="no DICOM images found"):
        find_series(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(GE, broken)
    victim = sorted(broken.glob("*.dcm"))[3]
    ds = pydicom.dcmread(victim, force=True)
    del ds.ImagePositionPatient
    ds.save_as(victim)
    with pytest.raises(VolumeError, match="missing ImagePositionPatient"):
        read_series(find_series(broken)[0])
    gap = tmp_path / "gap"
    shutil.copytree(GE, gap)
    sorted(gap.glob("*.dcm"))[7].unlink()  # a missing slice makes the spacing uneven
    with pytest.raises(VolumeError, match="uneven slice spacing"):
        read_series(find_series(gap)[0])
    truncated = tmp_path / "truncated"
    shutil.copytree(GE, truncated)
    victim = sorted(truncated.glob("*.dcm"))[0]
    victim.write_bytes(victim.read_bytes()[:-3000])
    with pytest.raises(VolumeError, match="unreadable DICOM"):
        read_series(find_series(truncated)[0])


@needs_dcm2niix
@pytest.mark.parametrize("mode,folder", [("in_plane", GE), ("through_plane", GE), ("through_plane", MOSAIC)])
def test_written_series_reads_back_in_dcm2niix_with_the_expected_geometry(mode, folder, tmp_path):
    from medical.dicom_write import write_dicom_series
    from medical.slicewise import upscale_in_plane, upscale_through_plane
    from srstream.engine import Upscaler

    source = read_series(find_series(folder)[0], 0)
    up = Upscaler("fast-x4", backend="cpu", batch_size=16)
    out = (upscale_in_plane if mode == "in_plane" else upscale_through_plane)(source, up, progress=False)
    before = {f.name: f.read_bytes() for f in folder.iterdir()}
    assert write_dicom_series(out, source, tmp_path / "sr", "srstream fast-x4 x4") == 0
    assert before == {f.name: f.read_bytes() for f in folder.iterdir()}
    (ref,) = dcm2niix(tmp_path / "sr", tmp_path / "nii")
    assert ref.shape[:3] == out.shape
    assert np.abs(ref.affine - out.affine).max() < 1e-3
    assert np.abs(np.asarray(ref.dataobj, dtype=np.float64) - np.rint(out.data)).max() <= 1
    files = sorted((tmp_path / "sr").glob("*.dcm"))
    first, src = pydicom.dcmread(files[0]), pydicom.dcmread(sorted(folder.glob("*.dcm"))[0], force=True)
    assert first.SeriesInstanceUID != src.SeriesInstanceUID and first.StudyInstanceUID == src.StudyInstanceUID
    assert first.PatientID == src.PatientID and list(first.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert "fast-x4" in first.DerivationDescription
    assert first.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert first.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert len({pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}) == len(files)
    assert "MOSAIC" not in first.ImageType  # one slice per file now, whatever the source tiled


def test_enhanced_source_refuses_dicom_output_clearly(tmp_path):
    from medical.dicom_write import write_dicom_series

    source = read_series(find_series(ENHANCED)[0])
    with pytest.raises(VolumeError, match="enhanced multi-frame source is not supported \\(use --format nifti\\)"):
        write_dicom_series(source, source, tmp_path / "sr", "x")
    assert not any(tmp_path.iterdir())


@needs_dcm2niix
def test_siemens_mosaic_volumes_agree_with_dcm2niix(tmp_path):
    (series,) = find_series(MOSAIC)
    with pytest.raises(VolumeError, match="holds 2 volumes"):
        read_series(series)
    (ref,) = dcm2niix(MOSAIC, tmp_path / "ref")
    assert ref.shape == (72, 72, 5, 2)
    for index in range(2):
        vol = read_series(series, index)
        assert vol.shape == (72, 72, 5) and np.allclose(vol.spacing, (3, 3, 12))
        assert np.abs(vol.affine - ref.affine).max() < 1e-3
        assert np.array_equal(vol.data, np.asarray(ref.dataobj, dtype=np.float64)[..., index])
