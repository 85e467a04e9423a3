"""The node's storage SCP: C-STORE (and C-ECHO) from allowed AEs, each instance checked against the caps and on disk,
fsync'd, before it is acknowledged, under names derived from nothing but hashes."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medical.node.security import Caps, safe_name, shown

if TYPE_CHECKING:
    from pynetdicom.events import EventHandlerType
    from pynetdicom.transport import ThreadedAssociationServer

log = logging.getLogger(__name__)

# C-STORE statuses (PS3.4 Annex B.2.3): refused for resources, data set not understood.
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
SUCCESS = 0x0000


def write_instance(folder: Path, sop_uid: str, data: bytes) -> Path:
    """`data` as `folder`/<hash of the SOP UID>.dcm: written under a temporary name, fsync'd, renamed, and the
    folder fsync'd, so that once this returns a crash cannot lose it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{safe_name(sop_uid)}.dcm"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    sync_folder(folder)
    return target


def sync_folder(folder: Path) -> None:
    """fsync a folder, so that the names created or renamed in it survive a crash."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Receiver:
    """Stores what allowed peers send into `incoming`/<hash of the Series UID>/; `lock` is held while an instance
    is written, so that a series is never claimed half-way through a write."""

    def __init__(self, ae_title: str, incoming: Path, caps: Caps, allowed: list[str], max_pdu: int = 65536) -> None:
        self.ae_title, self.incoming, self.caps, self.allowed = ae_title, incoming, caps, allowed
        self.max_pdu = max_pdu
        self.lock = threading.Lock()
        self._received: dict[int, int] = {}  # id(association) -> bytes received so far (PDUs)
        self._stored: dict[int, int] = {}  # id(association) -> bytes of instances stored
        self._server: ThreadedAssociationServer | None = None

    def start(self, host: str, port: int, tls: Any = None) -> None:
        """Listen on host:port (TLS with an ssl.SSLContext); returns at once, the server runs in its threads."""
        from pynetdicom import AE, StoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]  # made at import by pynetdicom

        ae = AE(ae_title=self.ae_title)
        ae.supported_contexts = StoragePresentationContexts
        ae.add_supported_context(Verification)
        ae.require_calling_aet = self.allowed  # empty: any calling AE (on the bound address)
        ae.require_called_aet = True  # a peer that means another node is not ours to store for
        ae.maximum_pdu_size = self.max_pdu
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30  # a silent peer is dropped, not waited for
        handlers: list[EventHandlerType] = [
            (evt.EVT_C_STORE, self._store),
            (evt.EVT_C_ECHO, lambda event: SUCCESS),
            (evt.EVT_DATA_RECV, self._count),
            (evt.EVT_CONN_CLOSE, self._forget),
            (evt.EVT_REJECTED, self._rejected),
        ]
        self._server = ae.start_server((host, port), block=False, evt_handlers=handlers, ssl_context=tls)

    def stop(self) -> None:
        """Stop listening and end the open associations."""
        if self._server is not None:
            self._server.shutdown()

    @staticmethod
    def _peer(event) -> str:
        peer = event.assoc.requestor
        return f"{peer.address}:{peer.port} AE {shown(peer.ae_title)}"

    def _rejected(self, event) -> None:
        log.warning(
            f"srmed serve: {self._peer(event)}: association rejected (calling AE not in --allow-ae, or called AE not "
            f"{self.ae_title!r})"
        )

    def _count(self, event) -> None:
        # Counted as the PDUs arrive, before pynetdicom assembles a dataset in memory: a peer that sends more than
        # the cap allows (a 10 GB declared length, say) is cut off here rather than buffered.
        key = id(event.assoc)
        self._received[key] = self._received.get(key, 0) + len(event.data)
        if self._received[key] > self.caps.max_association_bytes + 2 * self.max_pdu:
            log.warning(
                "srmed serve: %s: sent over --max-association-bytes %d; association aborted",
                self._peer(event),
                self.caps.max_association_bytes,
            )
            event.assoc.abort()

    def _forget(self, event) -> None:
        self._received.pop(id(event.assoc), None)
        self._stored.pop(id(event.assoc), None)

    def _store(self, event) -> int:
        peer = self._peer(event)
        key = id(event.assoc)
        try:
            data = event.encoded_dataset()
            head = event.dataset  # decoded lazily: only the elements asked for are read
            series_uid, sop_uid = str(head.SeriesInstanceUID), str(event.request.AffectedSOPInstanceUID)
        except Exception as exc:  # noqa: BLE001 - a malformed dataset has many faces in pydicom
            log.warning(
                "srmed serve: %s: instance not understood (%s: %s); refused", peer, type(exc).__name__, str(exc)[:120]
            )
            return CANNOT_UNDERSTAND
        refusal = self.caps.refusal(self.incoming, self._stored.get(key, 0), len(data))
        if refusal is not None:
            log.warning(f"srmed serve: {peer}: instance {shown(sop_uid)} refused ({refusal})")
            return OUT_OF_RESOURCES
        try:
            with self.lock:
                write_instance(self.incoming / safe_name(series_uid), sop_uid, data)
        except OSError as exc:
            log.warning(f"srmed serve: {peer}: instance {shown(sop_uid)} not stored ({exc.strerror or exc})")
            return OUT_OF_RESOURCES
        self._stored[key] = self._stored.get(key, 0) + len(data)
        return SUCCESS
