"""`srmed serve` against a real PACS (Debian's Orthanc): series sent by Orthanc come back upscaled as new derived
series, bad series are refused, hostile associations change nothing outside the work dir, and a destination that
is down gets the series once it is up, across a restart of the node."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pydicom
import pytest

from orthanc import (
    FAST,
    Node,
    Orthanc,
    as_new_series,
    assert_derived_like_local,
    assert_iod_clean,
    ge_slices,
    needs_orthanc,
)

pytestmark = needs_orthanc


def local_upscale(folder: Path, out: Path) -> Path:
    """What `srmed upscale FOLDER -o OUT` writes from the same files: the derived series' folder."""
    from medical.cli import main

    assert main(["upscale", str(folder), "-o", str(out), *FAST, "-q"]) == 0
    (series,) = [p for p in out.iterdir() if p.is_dir()]
    return series


def tree(root: Path) -> dict[str, int]:
    """Every file and folder under `root` with its size (folders: -1)."""
    return {str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1) for p in root.rglob("*")}


@pytest.fixture
def orthanc_and_node(tmp_path):
    node_port = __import__("conftest").free_port()
    pacs = Orthanc(tmp_path / "orthanc", {"srmed": ("SRMED", node_port)}).start()
    node = Node(tmp_path / "node", pacs.aet, port=node_port).start()
    yield pacs, node
    node.stop()
    pacs.stop()


def test_series_from_the_pacs_come_back_upscaled_and_bad_ones_are_refused(orthanc_and_node, tmp_path):
    pacs, node = orthanc_and_node
    first = tmp_path / "first"
    first.mkdir()
    for path in ge_slices(4):
        os.link(path, first / path.name)
    second = as_new_series(ge_slices(4, start=6), tmp_path / "second")
    single = as_new_series(ge_slices(1, start=12), tmp_path / "single")
    ids = [pacs.upload(list(first.iterdir())), pacs.upload(second), pacs.upload(single)]
    # Three series one after another: the second and third arrive while the first is being upscaled.
    for sid in ids:
        assert pacs.store_to("srmed", sid)["FailedInstancesCount"] == 0
    node.wait_for(r"refused, a single slice, not a volume; nothing sent")
    node.wait_for(r"(delivered.*[\s\S]*){2}")
    found = pacs.wait_series(5, 30)
    assert len(found) == 5  # 3 sent, 2 derived: nothing back for the single slice
    derived = [s for s in found if s["ID"] not in ids]
    by_source = {}
    for series in derived:
        datasets = pacs.datasets(series)
        by_source[str(datasets[0].ReferencedSeriesSequence[0].SeriesInstanceUID)] = datasets
        assert_iod_clean(datasets[0], tmp_path / "check.dcm")
    for folder in (first, tmp_path / "second"):
        uid = str(pydicom.dcmread(next(folder.iterdir())).SeriesInstanceUID)
        assert_derived_like_local(by_source[uid], sorted(folder.iterdir()), local_upscale(folder, tmp_path /
                                                                                             f"local_{folder.name}"))
    assert node.log.text.count("refused") == 1
    assert not any((node.workdir / "outbox").iterdir()) and not any((node.workdir / "incoming").iterdir())


def test_hostile_associations_change_nothing_outside_the_work_dir(tmp_path):
    from pynetdicom import AE, _config
    from pynetdicom.sop_class import MRImageStorage, Verification

    raw = tmp_path / "raw" / "declared.dcm"
    raw.parent.mkdir()
    pydicom.dcmread(ge_slices(2)[1]).save_as(raw, enforce_file_format=True)
    data = bytearray(raw.read_bytes())
    at = data.rfind(b"\xe0\x7f\x10\x00OW\x00\x00")  # PixelData, explicit VR: tag, VR, 2 reserved, length
    data[at + 8:at + 12] = (0xFFFFFFF0).to_bytes(4, "little")
    raw.write_bytes(bytes(data[:at + 12 + 1000]))
    down = f"ORTHANC@127.0.0.1:{__import__('conftest').free_port()}"  # nobody there: jobs would only queue
    node = Node(tmp_path / "node", down, "--allow-ae", "TESTSCU", "--max-association-bytes", "300000",
                "--quiet-seconds", "600").start()
    before = tree(tmp_path)
    try:
        def associate(aet: str):
            ae = AE(ae_title=aet)
            ae.add_requested_context(MRImageStorage, pydicom.uid.ExplicitVRLittleEndian)
            ae.add_requested_context(Verification)
            return ae.associate("127.0.0.1", node.port, ae_title="SRMED")

        # A calling AE not in --allow-ae is rejected at association.
        assert associate("EVIL").is_rejected
        node.wait_for("AE 'EVIL': association rejected")
        # Garbage instead of an A-ASSOCIATE-RQ, then a half-sent PDU: the node keeps serving.
        for junk in (b"\x07\x00GET / HTTP/1.1\r\n\r\n" * 10, b"\x01\x00\x00\x00\xff\xff"):
            with socket.create_connection(("127.0.0.1", node.port), timeout=5) as s:
                s.sendall(junk)
        assoc = associate("TESTSCU")
        assert assoc.is_established and assoc.send_c_echo().Status == 0
        # UIDs that would climb out of the work dir as names.
        ds = pydicom.dcmread(ge_slices(1)[0])
        ds.SeriesInstanceUID = "1.2/../../x"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = "1.2/../../../x"
        assert assoc.send_c_store(ds).Status == 0  # stored, under hashed names
        # An instance bigger than the association may store is refused (out of resources), not stored ...
        big = pydicom.dcmread(ge_slices(1)[0])
        big.Rows = big.Columns = 400
        big.PixelData = bytes(400 * 400 * 2)
        assert assoc.send_c_store(big).Status == 0xA700
        assoc.release()
        # ... and a peer that goes on sending far past the cap is cut off as the data arrives.
        assoc = associate("TESTSCU")
        big.Rows = big.Columns = 1024
        big.PixelData = bytes(1024 * 1024 * 2)
        assert "Status" not in assoc.send_c_store(big)  # no answer: the node dropped the association
        node.wait_for("sent over --max-association-bytes 300000; association aborted")
        # A declared length of ~4 GiB (the most a 32-bit length says) on the pixel data, sent as the raw bytes.
        _config.STORE_SEND_CHUNKED_DATASET = True  # pynetdicom sends the file's bytes as they are
        try:
            assoc = associate("TESTSCU")
            assoc.send_c_store(raw)
            assoc.release()
        finally:
            _config.STORE_SEND_CHUNKED_DATASET = False
        assoc = associate("TESTSCU")  # still serving
        assert assoc.is_established and assoc.send_c_echo().Status == 0
        assoc.release()
    finally:
        assert node.stop() in (0, 130)
    after = tree(tmp_path)
    outside = {k: v for k, v in after.items() if not k.startswith("node")}
    assert outside == {k: v for k, v in before.items() if not k.startswith("node")}
    stored = [Path(k) for k, v in after.items() if k.startswith("node/incoming/") and v >= 0]
    assert all(len(p.parts) == 4 and len(p.parent.name) == 32 and len(p.stem) == 32 for p in stored), stored
    assert len(stored) == 2  # the climbing UIDs and the short file; nothing of the refused 320 KB and 2 MB instances
    assert sum(after[str(p)] for p in stored) < 60_000  # what was sent, not what was declared
    assert not (tmp_path.parent / "x").exists() and not (tmp_path / "x").exists()


def test_free_space_floor_refuses_before_writing(tmp_path):
    from medical.node.security import Caps

    assert "floor --min-free-bytes" in Caps(1 << 40, 1 << 62).refusal(tmp_path, 0, 10)
    assert Caps(1 << 40, 0).refusal(tmp_path, 0, 10) is None
    assert "over --max-association-bytes" in Caps(100, 0).refusal(tmp_path, 95, 10)


def test_destination_down_then_up_delivers_across_a_restart(tmp_path):
    from pynetdicom import AE
    from pynetdicom.sop_class import MRImageStorage

    pacs = Orthanc(tmp_path / "orthanc")  # its ports reserved, not started: the destination is down
    node = Node(tmp_path / "node", pacs.aet).start()
    try:
        ae = AE(ae_title="SCANNER")
        ae.add_requested_context(MRImageStorage, pydicom.uid.ExplicitVRLittleEndian)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="SRMED")
        files = ge_slices(4)
        for path in files:
            assert assoc.send_c_store(pydicom.dcmread(path)).Status == 0
        assoc.release()
        node.wait_for(r"not reachable \(refused, dropped or timed out\); delivery \S+ stays queued, retry in 1 s")
        node.wait_for(r"stays queued, retry in 2 s")  # retried, with a longer delay
    finally:
        node.stop()
    (job,) = [p for p in (node.workdir / "outbox").iterdir()]
    assert len(list(job.glob("*.dcm"))) == 4 and (job / "state.json").exists()
    pacs.start()
    try:
        node = Node(tmp_path / "node", pacs.aet, port=node.port).start()
        node.wait_for("4 instances delivered")
        (series,) = pacs.wait_series(1, 30)
        assert len(series["Instances"]) == 4
        derived = pacs.datasets(series)
        assert {str(d.ReferencedSeriesSequence[0].SeriesInstanceUID) for d in derived} == \
            {str(pydicom.dcmread(files[0]).SeriesInstanceUID)}
        assert not any((node.workdir / "outbox").iterdir())
        node.stop()
    finally:
        pacs.stop()


@pytest.mark.skipif(__import__("shutil").which("openssl") is None, reason="needs openssl to make a certificate")
def test_tls_node_answers_tls_peers_only(tmp_path):
    import logging
    import ssl
    import subprocess

    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    cert, key = tmp_path / "node.pem", tmp_path / "node.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True, timeout=60)
    node = Node(tmp_path / "node", "X@127.0.0.1:1", "--tls-cert", str(cert), "--tls-key", str(key)).start()
    try:
        trust = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        trust.check_hostname = False
        ae = AE(ae_title="TESTSCU")
        ae.add_requested_context(Verification)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="SRMED", tls_args=(trust, "127.0.0.1"))
        assert assoc.is_established and assoc.send_c_echo().Status == 0
        assoc.release()
        logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
        assert not ae.associate("127.0.0.1", node.port, ae_title="SRMED").is_established  # plain TCP: no
    finally:
        node.stop()
