"""`srmed upscale --from-pacs SOURCE --study-uid UID|--series-uid UID [--send-to DEST]`: export, upscale, import in
one command.

From a DICOM node: C-FIND (series level) lists the series, C-GET brings their instances back on the same
association. C-GET rather than C-MOVE because C-MOVE makes the PACS open a second association to us, which needs our
AE title, address and a port it can reach configured on the PACS side; C-GET needs only that the PACS lets our AE
query and retrieve. From a DICOMweb root URL: QIDO-RS lists the series, WADO-RS brings them. The instances land in
OUTDIR/.pacs/<hash>/ and go through `srmed upscale` like any folder; with --send-to each derived series is stored
back by C-STORE or STOW-RS (medical.node.sender).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medical.node.security import ae_title, is_uid, safe_name
from medical.node.sender import Destination, associate, destination, store
from medical.volume import VolumeError

if TYPE_CHECKING:
    from medical.discover import Task

# Storage SOP classes asked for on a C-GET association (SCP role): the volume images srmed reads.
_GET_STORAGE = (
    "MRImageStorage",
    "CTImageStorage",
    "EnhancedMRImageStorage",
    "EnhancedCTImageStorage",
    "PositronEmissionTomographyImageStorage",
    "NuclearMedicineImageStorage",
    "SecondaryCaptureImageStorage",
    "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PacsRequest:
    """What pull mode reads of `srmed upscale`'s options: IN..., OUTDIR, --format and those of `add_options`
    (built once from the command line by `medical.commands`)."""

    inputs: tuple[str, ...]  # IN... as given: none where --from-pacs fetches the input
    output: Path  # OUTDIR: the fetched instances go to OUTDIR/.pacs/, the reports say what to send back
    format: str  # --format: --send-to stores DICOM series, so not with 'nifti'
    from_pacs: str | None = None  # AET@HOST:PORT or a DICOMweb URL
    study_uid: str | None = None
    series_uid: str | None = None
    send_to: str | None = None  # AET@HOST:PORT or a DICOMweb URL
    calling_ae: str = "SRMED"


def add_options(up: argparse.ArgumentParser) -> None:
    """Pull mode's options on `srmed upscale`."""
    up.add_argument(
        "--from-pacs",
        metavar="AET@HOST:PORT|URL",
        help="fetch the input from a PACS (C-FIND + C-GET, or QIDO-RS + WADO-RS from a DICOMweb URL)",
    )
    up.add_argument("--study-uid", help="with --from-pacs: every series of this study")
    up.add_argument("--series-uid", help="with --from-pacs: this series")
    up.add_argument(
        "--send-to",
        metavar="AET@HOST:PORT|URL",
        help="store each derived DICOM series there (C-STORE, or STOW-RS to a DICOMweb URL)",
    )
    up.add_argument("--calling-ae", default="SRMED", help="our AE title towards the PACS (default SRMED)")


def prepare(request: PacsRequest) -> list[str]:
    """Check the pull options; the inputs to upscale: IN... as given, or with --from-pacs the folder the series
    were fetched into (OUTDIR/.pacs/...)."""
    if request.send_to:
        destination(request.send_to)  # a typo fails now, not after the upscaling
        if request.format == "nifti":
            raise VolumeError("--send-to stores DICOM series: not with --format nifti")
    if not request.from_pacs:
        if request.study_uid or request.series_uid:
            raise VolumeError("--study-uid and --series-uid select what --from-pacs fetches: give --from-pacs")
        if not request.inputs:
            raise VolumeError("give IN... (files or folders) or --from-pacs")
        return list(request.inputs)
    if request.inputs:
        raise VolumeError("--from-pacs fetches the input: give no IN as well")
    wanted = request.series_uid or request.study_uid
    if not wanted:
        raise VolumeError("--from-pacs needs --study-uid UID or --series-uid UID")
    for uid in (request.study_uid, request.series_uid):
        if uid and not is_uid(uid):
            raise VolumeError(f"{uid!r}: not a DICOM UID")
    source = destination(request.from_pacs)
    folder = request.output / ".pacs" / safe_name(wanted)
    count = (_pull_web if source.is_web else _pull_dimse)(source, request, folder)
    log.info("srmed: %d instances from %s -> %s", count, source.text, folder)
    return [str(folder)]


def _query(request: PacsRequest):
    from pydicom.dataset import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = request.study_uid or ""
    query.SeriesInstanceUID = request.series_uid or ""
    query.Modality = ""
    return query


def _pull_dimse(source: Destination, request: PacsRequest, folder: Path) -> int:
    """C-FIND the series, C-GET each into `folder`; the instances received."""
    from pydicom.dataset import Dataset
    from pynetdicom import evt, sop_class
    from pynetdicom.presentation import build_context, build_role

    from medical.node.receiver import write_instance

    calling = ae_title(request.calling_ae)
    find = sop_class.StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]  # made at import
    assoc = associate(source, calling, [build_context(find)])
    try:
        found = [
            (str(ident.StudyInstanceUID), str(ident.SeriesInstanceUID))
            for status, ident in assoc.send_c_find(_query(request), find)
            if status and status.Status in (0xFF00, 0xFF01) and ident is not None
        ]
    finally:
        assoc.release()
    found = [pair for pair in found if is_uid(pair[0]) and is_uid(pair[1])]
    if not found:
        raise VolumeError(f"{source.text}: no series matches {request.series_uid or request.study_uid}")
    received = []

    def stored(event) -> int:
        data = event.encoded_dataset()
        received.append(write_instance(folder, str(event.request.AffectedSOPInstanceUID), data))
        return 0x0000

    get = sop_class.StudyRootQueryRetrieveInformationModelGet  # type: ignore[attr-defined]  # made at import
    storage = [getattr(sop_class, name) for name in _GET_STORAGE]
    contexts = [build_context(get)] + [build_context(uid) for uid in storage]
    roles = [build_role(uid, scp_role=True) for uid in storage]
    assoc = associate(source, calling, contexts, handlers=[(evt.EVT_C_STORE, stored)], roles=roles)
    try:
        for study, series in found:
            query = Dataset()
            query.QueryRetrieveLevel = "SERIES"
            query.StudyInstanceUID, query.SeriesInstanceUID = study, series
            last = None
            for status, _ in assoc.send_c_get(query, get):
                last = status.Status if status else None
            if last not in (0x0000, 0xB000):  # B000: some sub-operations failed (a SOP class we did not ask for)
                raise VolumeError(
                    f"{source.text}: C-GET of series {series} ended with status {'none' if last is None else hex(last)}"
                )
    finally:
        assoc.release()
    return len(received)


def _web_json(url: str, params: dict) -> list:
    import requests

    try:
        reply = requests.get(url, params=params, headers={"Accept": "application/dicom+json"}, timeout=60)
    except requests.RequestException as exc:
        raise VolumeError(f"{url}: QIDO-RS failed ({type(exc).__name__})") from None
    if reply.status_code == 204:
        return []
    if reply.status_code != 200:
        raise VolumeError(f"{url}: QIDO-RS answered HTTP {reply.status_code}")
    return reply.json()


def _parts(body: bytes, content_type: str) -> list[bytes]:
    """The bodies of a multipart/related message (WADO-RS's answer)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise VolumeError("WADO-RS answer is not multipart (no boundary)")
    delimiter = b"--" + match.group(1).encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        _, _, content = chunk.partition(b"\r\n\r\n")
        parts.append(content[:-2] if content.endswith(b"\r\n") else content)
    return parts


def _pull_web(source: Destination, request: PacsRequest, folder: Path) -> int:
    """QIDO-RS the series, WADO-RS each into `folder`; the instances received."""
    import pydicom
    import requests
    from pydicom.filebase import DicomBytesIO

    from medical.node.receiver import write_instance

    params = {"StudyInstanceUID": request.study_uid} if request.study_uid else {}
    if request.series_uid:
        params["SeriesInstanceUID"] = request.series_uid
    found = [
        (row.get("0020000D", {}).get("Value", [""])[0], row.get("0020000E", {}).get("Value", [""])[0])
        for row in _web_json(f"{source.url}/series", params)
    ]
    found = [pair for pair in found if is_uid(pair[0]) and is_uid(pair[1])]  # they go into URLs below
    if not found:
        raise VolumeError(f"{source.text}: no series matches {request.series_uid or request.study_uid}")
    count = 0
    for study, series in found:
        url = f"{source.url}/studies/{study}/series/{series}"
        try:
            reply = requests.get(url, headers={"Accept": 'multipart/related; type="application/dicom"'}, timeout=300)
        except requests.RequestException as exc:
            raise VolumeError(f"{url}: WADO-RS failed ({type(exc).__name__})") from None
        if reply.status_code != 200:
            raise VolumeError(f"{url}: WADO-RS answered HTTP {reply.status_code}")
        for part in _parts(reply.content, reply.headers.get("Content-Type", "")):
            try:
                sop = str(pydicom.dcmread(DicomBytesIO(part), stop_before_pixels=True).SOPInstanceUID)
            except Exception as exc:  # noqa: BLE001 - a damaged part has many faces in pydicom
                raise VolumeError(f"{url}: a part is not DICOM ({type(exc).__name__})") from None
            write_instance(folder, sop, part)
            count += 1
    return count


def send_back(request: PacsRequest, tasks: list[Task]) -> None:
    """With --send-to, store every derived DICOM series of this run (done now or before) there; SendError (one
    line) on the first one not taken."""
    from medical.report import report_path

    if not request.send_to:
        return
    dest = destination(request.send_to)
    for task in tasks:
        try:
            report = json.loads(report_path(request.output, task).read_text())
        except (OSError, ValueError):
            continue  # failed: already reported
        if report.get("format") != "dicom":
            continue
        files = sorted(Path(report["output"]).glob("*.dcm"))
        store(files, dest, ae_title(request.calling_ae))
        log.info("srmed: %d instances of %s -> %s", len(files), Path(report["output"]).name, dest.text)
