"""`srmed serve` with what a scanner sends: the whole 10-volume GE EPI series comes back from the node as one
derived series of 150 instances, and routing rules decide per series: upscaled, skipped, or forwarded unchanged
(all against Debian's Orthanc as the destination)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from assets import EPI
from conftest import free_port
from orthanc import Node, Orthanc, assert_derived_like_local, ge_slices, needs_orthanc

pytestmark = needs_orthanc


def send(files: list[Path], port: int) -> None:
    """C-STORE `files` to the node, as a scanner would."""
    from pynetdicom import AE
    from pynetdicom.sop_class import MRImageStorage

    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(MRImageStorage, pydicom.uid.ExplicitVRLittleEndian)
    ae.add_requested_context(MRImageStorage, pydicom.uid.ImplicitVRLittleEndian)
    assoc = ae.associate("127.0.0.1", port, ae_title="SRMED")
    assert assoc.is_established
    try:
        for path in files:
            assert assoc.send_c_store(pydicom.dcmread(path)).Status == 0
    finally:
        assoc.release()


def renamed(files: list[Path], folder: Path, description: str) -> list[Path]:
    """`files` as another series of the same study, described as `description`."""
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True)
    uid, out = generate_uid(), []
    for path in files:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SeriesDescription = uid, description
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.save_as(folder / path.name)
        out.append(folder / path.name)
    return out


@pytest.fixture
def pacs(tmp_path):
    server = Orthanc(tmp_path / "orthanc").start()
    yield server
    server.stop()


def test_a_ten_volume_series_comes_back_whole(pacs, tmp_path):
    from medical.cli import main

    node = Node(tmp_path / "node", pacs.aet).start()
    try:
        started = time.perf_counter()
        files = sorted(EPI.glob("*.dcm"))
        send(files, node.port)
        node.wait_for(r"150 instances delivered", timeout=180)
        seconds = time.perf_counter() - started
    finally:
        assert node.stop() in (0, 130)
    assert "series " in node.log.text and "10 volumes, in-plane with fast-x4" in node.log.text
    (derived,) = pacs.wait_series(1, 30)
    local = tmp_path / "local"
    assert main(["upscale", str(EPI), "-o", str(local), "-m", "fast-x4", "--scale", "4", "--backend", "cpu",
                 "-q"]) == 0
    (series,) = [p for p in local.iterdir() if p.is_dir()]
    assert_derived_like_local(pacs.datasets(derived), files, series)
    assert seconds < 170


def test_routing_rules_upscale_skip_and_forward(pacs, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('forward_unmatched = true\n\n[rules.epi]\nmodality = "MR"\ndescription = "epi"\n'
                     'max_thickness = 4\n\n[rules.localiser]\ndescription = "survey|localizer"\naction = "skip"\n')
    epi = ge_slices(4)
    survey = renamed(ge_slices(4, start=6), tmp_path / "survey", "3-plane survey")
    other = renamed(ge_slices(4, start=10), tmp_path / "other", "Sag T1 MPRAGE")
    node = Node(tmp_path / "node", pacs.aet, "--rules", str(rules)).start()
    try:
        assert "2 rules from" in node.log.text
        for files in (epi, survey, other):
            send(files, node.port)
            time.sleep(1.5)  # one series after another (the node waits --quiet-seconds 1 for each)
        node.wait_for(r"(delivered[\s\S]*){2}", timeout=120)
    finally:
        assert node.stop() in (0, 130)
    log = node.log.text
    assert "upscaling (rule 'epi')" in log and "rule 'localiser' skips it" in log
    assert "matches no rule; 4 instances forwarded unchanged" in log
    found = {str(pacs.datasets(s)[0].SeriesInstanceUID): pacs.datasets(s) for s in pacs.wait_series(2, 30)}
    assert len(found) == 2  # the derived EPI, and the other series as it was sent; nothing of the survey
    forwarded = found.pop(str(pydicom.dcmread(other[0]).SeriesInstanceUID))
    sent = {str(ds.SOPInstanceUID): ds for ds in map(pydicom.dcmread, other)}
    assert len(forwarded) == 4
    for ds in forwarded:
        assert np.array_equal(ds.pixel_array, sent[str(ds.SOPInstanceUID)].pixel_array)
    (derived,) = found.values()
    assert derived[0].Rows == 256 and derived[0].ReferencedSeriesSequence[0].SeriesInstanceUID == \
        pydicom.dcmread(epi[0]).SeriesInstanceUID


@pytest.mark.parametrize("text, message", [
    ('order = ["a", "b"]\n\n[rules.a]\nmodality = "MR"\n', "order names rule 'b' that does not exist"),
    ('[rules.a]\ndescription = "t2("\n', "is not a valid pattern"),
    ('[rules.a\n', "rules.toml: not valid TOML: line 1"),
])
def test_a_bad_rules_file_stops_the_node_at_start_in_one_line(tmp_path, text, message):
    import subprocess

    from orthanc import SRMED

    rules = tmp_path / "rules.toml"
    rules.write_text(text)
    done = subprocess.run([str(SRMED), "serve", "--send-to", "PACS@127.0.0.1:1", "--port", str(free_port()),
                           "--workdir", str(tmp_path / "node"), "--rules", str(rules), "--backend", "cpu"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("srmed: error:"), done.stderr


def test_the_example_rules_route_as_their_comments_say():
    from medical.node.rules import SeriesFacts, load_rules

    from assets import ROOT

    rules = load_rules(ROOT / "examples" / "node" / "rules.toml")
    assert rules.forward_unmatched
    route = lambda *facts: getattr(rules.route(SeriesFacts(*facts)), "name", None)  # noqa: E731
    assert route("MR", "Sag T2 FLAIR", 3.0, 256, 256, 30) == "thick-mr"
    assert route("MR", "3-plane localizer", 5.0, 256, 256, 3) == "localisers"
    assert route("CT", "Head routine", 1.25, 512, 512, 160) == "ct-head"
    assert route("CT", "Chest", 1.25, 512, 512, 300) is None  # forwarded unchanged
    assert rules.route(SeriesFacts("MR", "Sag T2 FLAIR", 3.0, 256, 256, 30)).options() == \
        {"mode": "through-plane", "spacing": 1.0}


def test_a_rules_options_go_over_the_command_lines():
    from medical.job import VolumeJob
    from medical.node.upscale import rule_job

    node = VolumeJob(mode="in-plane", scale=4.0, model="fast-x4")
    assert rule_job(node, {}) == node
    thick = rule_job(node, {"spacing": 1.0, "model": "mri-thick"})
    assert (thick.mode, thick.scale, thick.spacing, thick.model) == ("through-plane", None, 1.0, "mri-thick")
    x2 = rule_job(node, {"scale": 2.0, "mode": "auto"})
    assert (x2.mode, x2.scale, x2.spacing, x2.model) == ("auto", 2.0, None, "fast-x4")
