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


def prepare(args: argparse.Namespace) -> None:
    """Check the pull options; with --from-pacs, fetch the series into OUTDIR/.pacs/ and make that the input."""
    if args.send_to:
        destination(args.send_to)  # a typo fails now, not after the upscaling
        if args.format == "nifti":
            raise VolumeError("--send-to stores DICOM series: not with --format nifti")
    if not args.from_pacs:
        if args.study_uid or args.series_uid:
            raise VolumeError("--study-uid and --series-uid select what --from-pacs fetches: give --from-pacs")
        if not args.inputs:
            raise VolumeError("give IN... (files or folders) or --from-pacs")
        return
    if args.inputs:
        raise VolumeError("--from-pacs fetches the input: give no IN as well")
    if not (args.study_uid or args.series_uid):
        raise VolumeError("--from-pacs needs --study-uid UID or --series-uid UID")
    for uid in (args.study_uid, args.series_uid):
        if uid and not is_uid(uid):
            raise VolumeError(f"{uid!r}: not a DICOM UID")
    source = destination(args.from_pacs)
    folder = Path(args.output) / ".pacs" / safe_name(args.series_uid or args.study_uid)
    count = (_pull_web if source.is_web else _pull_dimse)(source, args, folder)
    log.info("srmed: %d instances from %s -> %s", count, source.text, folder)
    args.inputs = [str(folder)]


def _query(args: argparse.Namespace):
    from pydicom.dataset import Dataset

    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"
    query.StudyInstanceUID = args.study_uid or ""
    query.SeriesInstanceUID = args.series_uid or ""
    query.Modality = ""
    return query


def _pull_dimse(source: Destination, args: argparse.Namespace, folder: Path) -> int:
    """C-FIND the series, C-GET each into `folder`; the instances received."""
    from pydicom.dataset import Dataset
    from pynetdicom import evt, sop_class
    from pynetdicom.presentation import build_context, build_role

    from medical.node.receiver import write_instance

    calling = ae_title(args.calling_ae)
    find = sop_class.StudyRootQueryRetrieveInformationModelFind
    assoc = associate(source, calling, [build_context(find)])
    try:
        found = [
            (str(ident.StudyInstanceUID), str(ident.SeriesInstanceUID))
            for status, ident in assoc.send_c_find(_query(args), find)
            if status and status.Status in (0xFF00, 0xFF01) and ident is not None
        ]
    finally:
        assoc.release()
    found = [pair for pair in found if is_uid(pair[0]) and is_uid(pair[1])]
    if not found:
        raise VolumeError(f"{source.text}: no series matches {args.series_uid or args.study_uid}")
    received = []

    def stored(event) -> int:
        data = event.encoded_dataset()
        received.append(write_instance(folder, str(event.request.AffectedSOPInstanceUID), data))
        return 0x0000

    get = sop_class.StudyRootQueryRetrieveInformationModelGet
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


def _pull_web(source: Destination, args: argparse.Namespace, folder: Path) -> int:
    """QIDO-RS the series, WADO-RS each into `folder`; the instances received."""
    import pydicom
    import requests
    from pydicom.filebase import DicomBytesIO

    from medical.node.receiver import write_instance

    params = {"StudyInstanceUID": args.study_uid} if args.study_uid else {}
    if args.series_uid:
        params["SeriesInstanceUID"] = args.series_uid
    found = [
        (row.get("0020000D", {}).get("Value", [""])[0], row.get("0020000E", {}).get("Value", [""])[0])
        for row in _web_json(f"{source.url}/series", params)
    ]
    found = [pair for pair in found if is_uid(pair[0]) and is_uid(pair[1])]  # they go into URLs below
    if not found:
        raise VolumeError(f"{source.text}: no series matches {args.series_uid or args.study_uid}")
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


def send_back(args: argparse.Namespace, tasks: list[Task]) -> None:
    """With --send-to, store every derived DICOM series of this run (done now or before) there; SendError (one
    line) on the first one not taken."""
    from medical.report import report_path

    if not args.send_to:
        return
    dest = destination(args.send_to)
    for task in tasks:
        try:
            report = json.loads(report_path(Path(args.output), task).read_text())
        except (OSError, ValueError):
            continue  # failed: already reported
        if report.get("format") != "dicom":
            continue
        files = sorted(Path(report["output"]).glob("*.dcm"))
        store(files, dest, ae_title(args.calling_ae))
        log.info("srmed: %d instances of %s -> %s", len(files), Path(report["output"]).name, dest.text)
