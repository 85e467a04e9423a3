"""What the node lets in: calling AE titles, TLS, how much it stores, and names on disk that no received value can
steer."""

from __future__ import annotations

import hashlib
import re
import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path

from medical.volume import VolumeError

_AE_TITLE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # DICOM AE: 16 characters at most, no backslash
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def ae_title(text: str) -> str:
    """An AE title given on the command line, checked (1-16 printable characters, no backslash, not all spaces)."""
    if not _AE_TITLE.match(text) or not text.strip():
        raise VolumeError(f"{text!r}: not a DICOM AE title (1-16 printable characters, no backslash)")
    return text.strip()


def is_uid(text: str) -> bool:
    """Whether `text` is a well-formed DICOM UID (digits and dots, 64 characters at most)."""
    return len(text) <= 64 and bool(_UID.match(text))


def safe_name(value: str) -> str:
    """A file or folder name for a received value (a UID): its hash, so that nothing it holds ('/', '..') can
    reach the path, and the same value always gets the same name (a resent instance replaces itself)."""
    return hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:32]


def shown(value: object, limit: int = 80) -> str:
    """A received value as it may appear in the log: quoted, escaped, cut (no control characters or forged lines)."""
    return repr(str(value)[:limit])


def server_tls(cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext | None:
    """The listening side's TLS context (None without a certificate); with a CA, peers must show a certificate
    it signed."""
    if not cert:
        if key or ca:
            raise VolumeError("--tls-key and --tls-ca need --tls-cert")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if ca:
            context.load_verify_locations(ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise VolumeError(f"{cert}: cannot load the TLS certificate or key ({exc})") from None
    return context


def client_tls(cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext | None:
    """The sending side's TLS context (None without a CA or certificate): the peer checked against the CA, our
    certificate shown where given."""
    if not (cert or ca):
        return None
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # PACS are addressed by IP in DICOM; the CA check stays
    try:
        if cert:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise VolumeError(f"{cert}: cannot load the TLS certificate or key ({exc})") from None
    return context


@dataclass(frozen=True)
class Caps:
    """How much the node stores: bytes per association, and the free space it leaves on the work dir's disk."""

    max_association_bytes: int
    min_free_bytes: int

    def refusal(self, workdir: Path, stored: int, size: int) -> str | None:
        """Why an instance of `size` bytes, after `stored` bytes in its association, is refused; None if it fits."""
        if stored + size > self.max_association_bytes:
            return f"association over --max-association-bytes {self.max_association_bytes}"
        free = shutil.disk_usage(workdir).free
        if free - size < self.min_free_bytes:
            return f"{workdir}: {free} bytes free, floor --min-free-bytes {self.min_free_bytes}"
        return None
