"""Sending a derived series to its destination: C-STORE to `AET@HOST:PORT`, or STOW-RS to a DICOMweb root URL."""

from __future__ import annotations

import re
import ssl
import uuid
from dataclasses import dataclass
from pathlib import Path

from medical.volume import VolumeError

_DIMSE = re.compile(r"^(?P<aet>[^@\\]{1,16})@(?P<host>\[[0-9A-Fa-f:.]+\]|[^:@/\s]+):(?P<port>\d{1,5})$")


class SendError(VolumeError):
    """A destination did not take a series; the message names the destination and why."""


@dataclass(frozen=True)
class Destination:
    """A peer to send to or pull from: a DICOM node (AE title, host, port) or a DICOMweb root (url)."""

    text: str
    aet: str = ""
    host: str = ""
    port: int = 0
    url: str = ""

    @property
    def is_web(self) -> bool:
        return bool(self.url)


def destination(text: str) -> Destination:
    """`AET@HOST:PORT` or `http(s)://host[:port]/dicom-web`, checked; VolumeError naming it otherwise."""
    if text.startswith(("http://", "https://")):
        return Destination(text, url=text.rstrip("/"))
    match = _DIMSE.match(text)
    if not match or not 0 < int(match["port"]) < 65536:
        raise VolumeError(f"{text!r}: give a DICOM node as AET@HOST:PORT or a DICOMweb URL (http://.../dicom-web)")
    return Destination(text, match["aet"], match["host"].strip("[]"), int(match["port"]))


def associate(
    dest: Destination,
    calling_aet: str,
    contexts: list,
    tls: ssl.SSLContext | None = None,
    handlers: list | None = None,
    roles: list | None = None,
):
    """An established association with `dest` requesting `contexts`; SendError if it is refused or unreachable."""
    from pynetdicom import AE

    ae = AE(ae_title=calling_aet)
    ae.requested_contexts = contexts
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.connection_timeout = 10  # a destination that is down answers nothing: try again later, not now
    assoc = ae.associate(
        dest.host,
        dest.port,
        ae_title=dest.aet,
        ext_neg=roles,
        evt_handlers=handlers,
        tls_args=(tls, dest.host) if tls else None,
    )
    if not assoc.is_established:
        why = "rejected our association" if assoc.is_rejected else "not reachable (refused, dropped or timed out)"
        raise SendError(f"{dest.text}: {why}")
    return assoc


def _storage_contexts(files: list[Path]) -> list:
    import pydicom
    from pynetdicom.presentation import build_context

    pairs = set()
    for path in files:
        meta = pydicom.dcmread(path, stop_before_pixels=True).file_meta
        pairs.add((str(meta.MediaStorageSOPClassUID), str(meta.TransferSyntaxUID)))
    return [build_context(sop, syntax) for sop, syntax in sorted(pairs)]


def store(files: list[Path], dest: Destination, calling_aet: str, tls: ssl.SSLContext | None = None) -> None:
    """Every file to `dest`, by C-STORE or STOW-RS; SendError on the first one not taken."""
    if dest.is_web:
        return stow(files, dest.url)
    assoc = associate(dest, calling_aet, _storage_contexts(files), tls)
    try:
        for path in files:
            status = assoc.send_c_store(path)
            code = getattr(status, "Status", None)
            if code is None or code not in (0x0000, 0xB000, 0xB006, 0xB007):  # success and warnings
                raise SendError(f"{dest.text}: {path.name} not stored (status {'none' if code is None else hex(code)})")
    finally:
        if assoc.is_established:
            assoc.release()


def stow(files: list[Path], url: str, timeout: float = 60) -> None:
    """Every file to the DICOMweb root `url` in one STOW-RS request; SendError unless all were stored."""
    import requests

    boundary = uuid.uuid4().hex
    body = bytearray()
    for path in files:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + path.read_bytes() + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    headers = {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
        "Accept": "application/dicom+json",
    }
    try:
        reply = requests.post(f"{url}/studies", data=bytes(body), headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        raise SendError(f"{url}: STOW-RS failed ({type(exc).__name__})") from None
    if reply.status_code not in (200, 202):
        raise SendError(f"{url}: STOW-RS answered HTTP {reply.status_code}")
    try:
        failed = (reply.json() or {}).get("00081198", {}).get("Value", [])
    except ValueError:
        failed = []
    if failed or reply.status_code == 202:
        raise SendError(f"{url}: STOW-RS refused {len(failed) or 'some'} of {len(files)} instances")
