"""The registry of volume formats on the real files in tests/data: which format claims which file or series, that
reading through it is reading with the format's own reader, which writer `--format` picks, and that one more
format registered is all `srmed` needs to take it."""
import json

import numpy as np
import pytest

from medical import formats
from medical.cli import main as srmed
from medical.dicom_read import find_series, read_series
from medical.discover import discover
from medical.nifti_io import read_nifti
from medical.volume import Volume, VolumeError

from assets import DATA, HEAD

DICOM = DATA / "dicom"


@pytest.mark.parametrize("folder, name", [("ge_epi_vol1", "dicom"), ("si_epi_mosaic", "dicom"),
                                          ("enhanced", "dicom-enhanced")])
def test_each_real_series_is_claimed_by_its_format(folder, name):
    series = find_series(DICOM / folder)[0]
    assert formats.for_series(series).name == name
    assert [t.format for t in discover([str(DICOM / folder)])] == [name]


def test_files_are_claimed_by_name_and_an_unclaimed_one_goes_to_nifti(tmp_path):
    assert formats.claiming(HEAD) is formats.NIFTI and formats.for_file(HEAD).stem(HEAD) == "t1_head_crop"
    stray = next((DICOM / "ge_epi_vol1").glob("*.dcm"))
    assert formats.claiming(stray) is None and formats.for_file(stray) is formats.NIFTI
    with pytest.raises(VolumeError, match="not a readable NIfTI file"):  # the fallback's reader says why
        discover([str(stray)])[0].open()


def test_reading_through_the_registry_is_reading_with_the_formats_own_reader():
    head = discover([str(HEAD)])[0].open().read(0)
    assert np.array_equal(head.data, read_nifti(HEAD).data) and np.array_equal(head.affine, read_nifti(HEAD).affine)
    for folder in ("ge_epi_vol1", "enhanced"):
        task = discover([str(DICOM / folder)])[0]
        direct = read_series(find_series(DICOM / folder)[0])
        via = task.open().read(0)
        assert np.array_equal(via.data, direct.data) and np.allclose(via.affine, direct.affine)


def test_the_writer_follows_format_and_the_source():
    assert formats.output_names() == ("nifti", "dicom")
    assert formats.writer("same", formats.NIFTI) is formats.NIFTI
    assert formats.writer("same", formats.DICOM_SERIES) is formats.DICOM_SERIES
    assert formats.writer("nifti", formats.DICOM_SERIES) is formats.NIFTI
    # An enhanced object comes back as a classic series, which the DICOM writer refuses in its own words.
    assert formats.writer("same", formats.ENHANCED_DICOM) is formats.DICOM_SERIES
    with pytest.raises(VolumeError, match="cannot be written"):
        formats.writer("dicom-enhanced", formats.NIFTI)


class _Npy:
    """A toy format: a 3-D .npy array, 1 mm voxels."""

    name, kind, writes_as, writable, suffix = "npy", "file", "nifti", False, ".npy"

    def detect(self, path):
        return path.name.endswith(".npy")

    def stem(self, path):
        return path.name[:-4]

    def header_shape(self, path):
        return np.load(path, mmap_mode="r").shape

    def open(self, path, series_uid):
        return formats.OneVolume(Volume(np.load(path), np.eye(4), str(path), np.dtype(np.int16), {"format": "npy"}))


def test_one_more_format_registered_is_taken_by_srmed(tmp_path, monkeypatch):
    volume = np.asarray(read_nifti(HEAD).data[:24, :24, :2], dtype=np.float64)
    np.save(tmp_path / "crop.npy", volume)
    monkeypatch.setattr(formats, "FORMATS", (_Npy(), *formats.FORMATS))
    assert srmed(["upscale", str(tmp_path / "crop.npy"), "-o", str(tmp_path / "out"), "--scale", "2",
                  "--backend", "cpu", "-q"]) == 0
    report = json.loads((tmp_path / "out" / "crop.json").read_text())
    assert report["format"] == "nifti" and report["output_shape"] == [48, 48, 2]
    assert read_nifti(tmp_path / "out" / "crop.nii.gz").shape == (48, 48, 2)
