"""A real PACS for the DICOM node and pull tests: Debian's Orthanc on free ports of 127.0.0.1, with a throwaway
configuration and storage under the test's tmp_path (DICOMweb on, no authentication, the srmed node's AE known),
and `srmed serve` run as a subprocess beside it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest

from assets import GE, ROOT
from conftest import LogWatch, free_port

ORTHANC = Path("/usr/sbin/Orthanc")
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
SRMED = Path(sys.executable).with_name("srmed")
FAST = ["-m", "fast-x4", "--scale", "4", "--backend", "cpu"]  # the medical tests' fastest model, in-plane x4

needs_orthanc = pytest.mark.skipif(not (ORTHANC.exists() and DICOMWEB_PLUGIN.exists()),
                                   reason="needs Debian's orthanc and orthanc-dicomweb (/usr/sbin/Orthanc)")


def ge_slices(count: int = 4, start: int = 0) -> list[Path]:
    """`count` consecutive slices of the real GE EPI series (64x64): a small volume that is fast on a CPU."""
    return sorted(GE.glob("*.dcm"))[start:start + count]


def as_new_series(files: list[Path], folder: Path) -> list[Path]:
    """Copies of `files` in `folder` as another series of the same study (new Series and SOP Instance UIDs)."""
    from pydicom.uid import generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    series_uid, out = generate_uid(), []
    for path in files:
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SeriesNumber = series_uid, int(ds.SeriesNumber) + 50
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        out.append(folder / path.name)
        ds.save_as(out[-1])
    return out


class Orthanc:
    """Orthanc on `http_port` (REST, DICOMweb at /dicom-web) and `dicom_port` as AE ORTHANC, storing under `root`;
    `modalities` maps a name to (AE title, port) on 127.0.0.1."""

    def __init__(self, root: Path, modalities: dict[str, tuple[str, int]] | None = None,
                 http_port: int | None = None, dicom_port: int | None = None) -> None:
        self.root, self.modalities = root, modalities or {}
        self.http_port, self.dicom_port = http_port or free_port(), dicom_port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def aet(self) -> str:
        return f"ORTHANC@127.0.0.1:{self.dicom_port}"

    def start(self) -> Orthanc:
        self.root.mkdir(parents=True, exist_ok=True)
        config = {"Name": "srmed-test", "StorageDirectory": str(self.root / "db"), "IndexDirectory":
                  str(self.root / "db"), "HttpPort": self.http_port, "DicomPort": self.dicom_port,
                  "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                  "HttpServerEnabled": True, "OrthancExplorerEnabled": False, "WebDavEnabled": False,
                  "DicomServerEnabled": True, "Plugins": [str(DICOMWEB_PLUGIN)],
                  "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}, "StableAge": 1,
                  "DicomModalities": {name: [aet, "127.0.0.1", port] for name, (aet, port) in self.modalities.items()}}
        (self.root / "orthanc.json").write_text(json.dumps(config, indent=1))
        log = open(self.root / "orthanc.log", "wb")  # noqa: SIM115 - Orthanc writes it for as long as it runs
        self.proc = subprocess.Popen([str(ORTHANC), str(self.root / "orthanc.json")], stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.get("/system")
                return self
            except OSError:
                assert self.proc.poll() is None, (self.root / "orthanc.log").read_text()[-2000:]
                time.sleep(0.2)
        raise TimeoutError("Orthanc did not start: " + (self.root / "orthanc.log").read_text()[-2000:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None):
        import requests

        reply = requests.request(method, self.url + path, data=body, timeout=60)
        if reply.status_code >= 400:
            raise AssertionError(f"Orthanc {method} {path}: HTTP {reply.status_code} {reply.text[:300]}")
        return reply

    def get(self, path: str):
        import requests

        try:
            return self.request("GET", path).json()
        except requests.ConnectionError as exc:
            raise OSError(str(exc)) from None

    def upload(self, files: list[Path]) -> str:
        """Store `files` (one series) through the REST API; Orthanc's id of their series."""
        ids = [self.request("POST", "/instances", path.read_bytes()).json()["ParentSeries"] for path in files]
        assert len(set(ids)) == 1
        return ids[0]

    def series(self) -> list[dict]:
        """Every series Orthanc holds, with its main tags and instances."""
        return [self.get(f"/series/{sid}") for sid in self.get("/series")]

    def wait_series(self, count: int, timeout: float) -> list[dict]:
        """Wait until Orthanc holds `count` series, each with all its instances (its series is 'stable')."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.series()
            if len(found) >= count and all(s.get("IsStable") for s in found):
                return found
            time.sleep(0.5)
        raise AssertionError(f"Orthanc holds {len(self.series())} series, not {count}, after {timeout} s")

    def datasets(self, series: dict) -> list[pydicom.Dataset]:
        """The series' instances as Orthanc stores them, in slice order."""
        import io

        out = [pydicom.dcmread(io.BytesIO(self.request("GET", f"/instances/{iid}/file").content))
               for iid in series["Instances"]]
        return sorted(out, key=lambda ds: int(ds.InstanceNumber))

    def store_to(self, modality: str, series_id: str) -> dict:
        """Orthanc sends a series to one of its modalities by C-STORE (REST: /modalities/{id}/store)."""
        body = json.dumps({"Resources": [series_id], "Synchronous": True}).encode()
        return self.request("POST", f"/modalities/{modality}/store", body).json()


class Node:
    """`srmed serve` as a subprocess on a free port, its log read as it comes."""

    def __init__(self, workdir: Path, send_to: str, *extra: str, port: int | None = None) -> None:
        self.workdir, self.port = workdir, port or free_port()
        self.command = [str(SRMED), "serve", "--port", str(self.port), "--ae-title", "SRMED", "--send-to", send_to,
                        "--workdir", str(workdir), "--quiet-seconds", "1", "--retry-seconds", "1",
                        "--max-retry-seconds", "2", *FAST, *extra]
        self.proc: subprocess.Popen | None = None
        self.log: LogWatch | None = None

    def start(self) -> Node:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=env)
        self.log = LogWatch(self.proc.stderr)
        assert self.log.wait_for("listening on", 120), self.log.text
        return self

    def wait_for(self, pattern: str, timeout: float = 90) -> None:
        assert self.log.wait_for(pattern, timeout), self.log.text

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def assert_derived_like_local(derived: list[pydicom.Dataset], sources: list[Path], local: Path) -> None:
    """`derived` (back from the PACS) is the new series `srmed upscale` writes in `local` from `sources`: new
    Series and SOP UIDs, the source's study, references to the source series, the geometry scaled in-plane x4,
    and the same pixels."""
    src = sorted((pydicom.dcmread(p) for p in sources), key=lambda ds: int(ds.InstanceNumber))
    mine = sorted((pydicom.dcmread(p) for p in local.glob("*.dcm")), key=lambda ds: int(ds.InstanceNumber))
    assert len(derived) == len(src) == len(mine)
    source_sops = {str(ds.SOPInstanceUID) for ds in src}
    assert len({str(ds.SeriesInstanceUID) for ds in derived}) == 1
    for got, s, want in zip(derived, src, mine):
        assert got.SeriesInstanceUID != s.SeriesInstanceUID and got.StudyInstanceUID == s.StudyInstanceUID
        assert got.SOPInstanceUID not in source_sops and got.SOPInstanceUID != want.SOPInstanceUID  # a new run
        assert got.ReferencedSeriesSequence[0].SeriesInstanceUID == s.SeriesInstanceUID
        assert got.SourceImageSequence[0].ReferencedSOPInstanceUID in source_sops
        assert list(got.ImageType[:2]) == ["DERIVED", "SECONDARY"]
        assert np.allclose([float(v) for v in got.ImageOrientationPatient],
                           [float(v) for v in s.ImageOrientationPatient], atol=1e-6)
        assert np.allclose([float(v) for v in got.PixelSpacing], [float(v) / 4 for v in s.PixelSpacing],
                           atol=1e-5)
        assert (got.Rows, got.Columns) == (s.Rows * 4, s.Columns * 4)
        # Each slice stays in its plane; within it, the first pixel is where srmed upscale puts it.
        normal = np.cross([float(v) for v in s.ImageOrientationPatient[:3]],
                          [float(v) for v in s.ImageOrientationPatient[3:]])
        assert abs(np.dot(np.subtract([float(v) for v in got.ImagePositionPatient],
                                      [float(v) for v in s.ImagePositionPatient]), normal)) < 1e-4
        assert np.allclose([float(v) for v in got.ImagePositionPatient],
                           [float(v) for v in want.ImagePositionPatient], atol=1e-5)
        assert np.array_equal(got.pixel_array, want.pixel_array)


def assert_iod_clean(ds: pydicom.Dataset, scratch: Path) -> None:
    """dciodvfy (dicom3tools) finds no errors in `ds` as the PACS returned it (skipped where not installed)."""
    import shutil

    if shutil.which("dciodvfy") is None:
        return
    ds.save_as(scratch, enforce_file_format=True)
    report = subprocess.run(["dciodvfy", str(scratch)], capture_output=True, text=True, timeout=60)
    errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
    assert errors == [], errors
