"""Pull mode against a real PACS (Debian's Orthanc): `srmed upscale --from-pacs ... --send-to ...` fetches a series
(C-FIND + C-GET, or QIDO-RS + WADO-RS), upscales it, and stores the derived series back (C-STORE, or STOW-RS)."""
from __future__ import annotations

import pydicom
import pytest

from medical.cli import main

from conftest import free_port
from orthanc import FAST, Orthanc, assert_derived_like_local, ge_slices, needs_orthanc

pytestmark = needs_orthanc


@pytest.fixture
def pacs(tmp_path):
    # Our AE is a known modality: Orthanc lets known modalities C-FIND and C-GET.
    server = Orthanc(tmp_path / "orthanc", {"srmed": ("SRMED", free_port())}).start()
    yield server
    server.stop()


def local(tmp_path, files):
    folder = tmp_path / "local_in"
    folder.mkdir()
    for path in files:
        (folder / path.name).write_bytes(path.read_bytes())
    assert main(["upscale", str(folder), "-o", str(tmp_path / "local"), *FAST, "-q"]) == 0
    (series,) = [p for p in (tmp_path / "local").iterdir() if p.is_dir()]
    return series


@pytest.mark.parametrize("protocol", ["dimse", "dicomweb"])
def test_pull_upscale_and_store_back(protocol, pacs, tmp_path):
    files = ge_slices(4)
    source_id = pacs.upload(files)
    first = pydicom.dcmread(files[0])
    if protocol == "dimse":  # by series, C-FIND + C-GET, stored back by C-STORE
        where, select = pacs.aet, ["--series-uid", str(first.SeriesInstanceUID)]
    else:  # by study, QIDO-RS + WADO-RS, stored back by STOW-RS
        where, select = f"{pacs.url}/dicom-web", ["--study-uid", str(first.StudyInstanceUID)]
    out = tmp_path / "out"
    assert main(["upscale", "--from-pacs", where, *select, "--send-to", where, "-o", str(out), *FAST, "-q"]) == 0
    found = pacs.wait_series(2, 30)
    (derived,) = [s for s in found if s["ID"] != source_id]
    assert_derived_like_local(pacs.datasets(derived), files, local(tmp_path, files))


def test_pull_options_are_checked_in_one_line(tmp_path, capsys):
    out = str(tmp_path / "out")
    cases = [(["-o", out], "give IN... (files or folders) or --from-pacs"),
             (["-o", out, "--from-pacs", "PACS@127.0.0.1:1"], "--from-pacs needs --study-uid UID or --series-uid"),
             (["-o", out, "--from-pacs", "PACS@127.0.0.1:1", "--series-uid", "1.2/../x"], "not a DICOM UID"),
             (["-o", out, "--from-pacs", "nowhere", "--series-uid", "1.2"], "give a DICOM node as AET@HOST:PORT"),
             (["-o", out, "--from-pacs", f"PACS@127.0.0.1:{free_port()}", "--series-uid", "1.2"],
              "not reachable"),
             (["-o", out, str(tmp_path), "--send-to", "X@h:1", "--format", "nifti"], "not with --format nifti")]
    for argv, message in cases:
        assert main(["upscale", *argv, *FAST]) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_time_series_is_pulled_upscaled_and_stored_back_whole(pacs, tmp_path):
    from assets import DATA

    files = sorted((DATA / "dicom" / "ge_epi").glob("*.dcm"))  # 10 volumes of 15 slices
    source_id = pacs.upload(files)
    uid = str(pydicom.dcmread(files[0]).SeriesInstanceUID)
    out = tmp_path / "out"
    assert main(["upscale", "--from-pacs", pacs.aet, "--series-uid", uid, "--send-to", pacs.aet, "-o", str(out),
                 *FAST, "-q"]) == 0
    (derived,) = [s for s in pacs.wait_series(2, 60) if s["ID"] != source_id]
    assert_derived_like_local(pacs.datasets(derived), files, local(tmp_path, files))
