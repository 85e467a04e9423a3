"""`srmed serve`: the DICOM node. Receives series (medical.node.receiver), upscales each once complete with
`srmed upscale`'s plan (medical.node.upscale), queues the result on disk and delivers it (outbox, sender).

Work dir layout: incoming/<series hash>/ (received, fsync'd before acknowledged), work/<job>/in|out (being
upscaled), outbox/<job>/ (waiting to be delivered). On start, work/ goes back to be done again and outbox/ is sent.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from training.errors import SrstreamError
from training.logs import log_to_stderr

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from medical.job import VolumeJob
    from medical.model_choice import Engines
    from medical.node.rules import Rule, Rules


def add_parser(sub) -> None:
    """`srmed serve`'s options, with `srmed upscale`'s for the upscaling."""
    from medical.commands import add_upscale_options

    p = sub.add_parser("serve", help="a DICOM node: receive series by C-STORE, upscale, send the result on")
    _add_network_options(p)
    _add_queue_options(p)
    p.add_argument(
        "--rules",
        metavar="FILE",
        help="routing rules (TOML): which series are upscaled, skipped or "
        "forwarded unchanged, and with what options (default: upscale every series)",
    )
    add_upscale_options(p, inputs=False)
    p.set_defaults(run=run)


def _add_network_options(p: argparse.ArgumentParser) -> None:
    """Where the node listens, who may call it, where it sends, and TLS."""
    p.add_argument("--port", type=int, default=11112, help="DICOM port to listen on (default 11112)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine)")
    p.add_argument("--ae-title", default="SRMED", help="our AE title (default SRMED)")
    p.add_argument(
        "--send-to",
        required=True,
        metavar="AET@HOST:PORT|URL",
        help="where derived series go: a DICOM node, or a DICOMweb root for STOW-RS",
    )
    p.add_argument(
        "--allow-ae",
        nargs="+",
        default=[],
        metavar="AET",
        help="calling AE titles accepted (default: any, on the bound address)",
    )
    p.add_argument("--tls-cert", help="our certificate (PEM): listen and send with TLS")
    p.add_argument("--tls-key", help="its private key (PEM)")
    p.add_argument("--tls-ca", help="CA certificates (PEM) that peers' certificates must be signed by")


def _add_queue_options(p: argparse.ArgumentParser) -> None:
    """The work dir: when a series is complete, retries, and the limits on what is stored."""
    p.add_argument(
        "--workdir", default="srmed-node", help="received, working and outgoing series (default ./srmed-node)"
    )
    p.add_argument(
        "--quiet-seconds",
        type=float,
        default=10,
        help="a series is complete once nothing new came for this long (default 10)",
    )
    p.add_argument("--series-size", type=int, metavar="N", help="or once it has N instances")
    p.add_argument(
        "--retry-seconds",
        type=float,
        default=10,
        help="first delay before resending to a "
        "destination that failed; it doubles up to --max-retry-seconds (default 10)",
    )
    p.add_argument("--max-retry-seconds", type=float, default=600)
    p.add_argument(
        "--max-association-bytes",
        type=int,
        default=4 << 30,
        help="most bytes one association may store (default 4 GiB)",
    )
    p.add_argument(
        "--min-free-bytes",
        type=int,
        default=2 << 30,
        help="refuse instances that would leave less free space in --workdir (default 2 GiB)",
    )


class Node:
    """The node's state on disk and its threads: the SCP receiving, a sender delivering, the caller upscaling."""

    def __init__(self, args: argparse.Namespace, job: VolumeJob, engines: Engines, rules: Rules | None) -> None:
        from medical.node.outbox import Outbox
        from medical.node.security import Caps, ae_title, client_tls, server_tls
        from medical.node.sender import destination

        self.args, self.job, self.engines, self.rules = args, job, engines, rules
        self.ae_title = ae_title(args.ae_title)
        self.allowed = [ae_title(t) for t in args.allow_ae]
        self.dest = destination(args.send_to)
        self.server_tls = server_tls(args.tls_cert, args.tls_key, args.tls_ca)
        self.client_tls = client_tls(args.tls_cert, args.tls_key, args.tls_ca)
        root = Path(args.workdir).resolve()
        self.incoming, self.work = root / "incoming", root / "work"
        for folder in (self.incoming, self.work):
            folder.mkdir(parents=True, exist_ok=True)
        self.caps = Caps(args.max_association_bytes, args.min_free_bytes)
        self.outbox = Outbox(root / "outbox", args.retry_seconds, args.max_retry_seconds)
        self.stopping = threading.Event()

    def recover(self) -> None:
        """Series whose upscaling a stop interrupted go back to be done again (their instances are all there)."""
        for folder in sorted(p for p in self.work.iterdir() if p.is_dir()):
            shutil.rmtree(folder / "out", ignore_errors=True)
            target = self.incoming / folder.name.split("-", 1)[-1]
            if (folder / "in").is_dir() and not target.exists():
                os.replace(folder / "in", target)
            shutil.rmtree(folder, ignore_errors=True)

    def process(self, job: Path) -> None:
        """Route, refuse or upscale the claimed series in `job`/in, and queue what is to be sent."""
        from medical.node.security import shown
        from medical.node.series import series_uid

        inputs = job / "in"
        try:
            uid = shown(series_uid(inputs))
            count = len(list(inputs.glob("*.dcm")))
            self._route(job, uid, count)
        except Exception as exc:  # noqa: BLE001 - one bad series must not stop the node
            log.error(
                "srmed serve: series in %s: failed, %s; nothing sent",
                job.name,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
        finally:
            shutil.rmtree(job, ignore_errors=True)

    def _route(self, job: Path, uid: str, count: int) -> None:
        """What the rules say of the series: skip it, forward it unchanged, or upscale it with their options."""
        from medical.node.rules import facts_of

        rule = self.rules.route(facts_of(job / "in")) if self.rules else None
        if self.rules and rule is None:
            if not self.rules.forward_unmatched:
                log.info(f"srmed serve: series {uid} ({count} instances): matches no rule; skipped, nothing sent")
                return
            return self._forward(job, uid, "matches no rule")
        if rule is not None and rule.action == "skip":
            log.info(f"srmed serve: series {uid} ({count} instances): rule {rule.name!r} skips it; nothing sent")
            return
        if rule is not None and rule.action == "forward":
            return self._forward(job, uid, f"rule {rule.name!r}")
        self._upscale(job, uid, count, rule)

    def _forward(self, job: Path, uid: str, why: str) -> None:
        queued = self.outbox.put(job / "in", job.name)
        log.info(
            "srmed serve: series %s: %s; %d instances forwarded unchanged to %s",
            uid,
            why,
            len(queued.files),
            self.dest.text,
        )

    def _upscale(self, job: Path, uid: str, count: int, rule: Rule | None) -> None:
        from medical.node.series import refusal
        from medical.node.upscale import upscale_series

        why = refusal(job / "in")
        if why is not None:
            log.warning(f"srmed serve: series {uid} ({count} instances): refused, {why}; nothing sent")
            return
        from medical.node.upscale import rule_job

        request = rule_job(self.job, rule.options()) if rule is not None else self.job
        named = f" (rule {rule.name!r})" if rule is not None else ""
        log.info(f"srmed serve: series {uid}: {count} instances received; upscaling{named}")
        started = time.perf_counter()
        derived, report = upscale_series(job, request, self.engines)
        queued = self.outbox.put(derived, job.name)
        volumes = f"{report['volumes']} volumes, " if report["volumes"] > 1 else ""
        log.info(
            f"srmed serve: series {uid}: {volumes}{report['mode']} with {report['model']} ({report['mode_reason']}), "
            f"upscaled in {time.perf_counter() - started:.1f} s, {len(queued.files)} instances queued for "
            f"{self.dest.text}"
        )

    def deliver(self) -> None:
        """The sender's loop: every due delivery to the destination, until the node stops."""
        from medical.node.sender import SendError, store

        while not self.stopping.is_set():
            for delivery in self.outbox.due():
                if self.stopping.is_set():
                    break
                try:
                    store(delivery.files, self.dest, self.ae_title, self.client_tls)
                except (SendError, OSError, ValueError) as exc:
                    delay = self.outbox.failed(delivery, str(exc))
                    log.warning(
                        "srmed serve: %s; delivery %s stays queued, retry in %g s",
                        str(exc).splitlines()[0],
                        delivery.folder.name,
                        delay,
                    )
                    continue
                count = len(delivery.files)
                self.outbox.delivered(delivery)
                log.info(
                    f"srmed serve: delivery {delivery.folder.name}: {count} instances delivered to {self.dest.text}"
                )
            self.stopping.wait(0.5)


def run(args: argparse.Namespace) -> int:
    """`srmed serve`: listen until interrupted; 1 (one line) if it cannot start."""
    from medical.commands import check_options
    from medical.model_choice import Engines
    from medical.node.receiver import Receiver
    from medical.node.rules import load_rules
    from medical.node.series import claim, complete

    log_to_stderr("%(asctime)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")  # a service manager keeps the log
    try:
        job = check_options(args)
        rules = load_rules(args.rules) if args.rules else None
        engines = Engines(job)
        for model in {job.model, *(r.model for r in rules.rules)} if rules else {job.model}:
            if model:  # a model that cannot load stops the node at start, not at its first series
                engines.get(model)
        node = Node(args, job, engines, rules)
        node.recover()
        receiver = Receiver(node.ae_title, node.incoming, node.caps, node.allowed)
        receiver.start(args.host, args.port, node.server_tls)
    except (SrstreamError, OSError) as exc:
        print(f"srmed: error: {exc}", file=sys.stderr)
        return 1
    sender = threading.Thread(target=node.deliver, name="srmed-sender", daemon=True)
    sender.start()
    log.info(
        f"srmed serve: listening on {args.host}:{args.port} as {node.ae_title} "
        f"({'TLS' if node.server_tls else 'no TLS'}, "
        f"calling AEs: {' '.join(node.allowed) or 'any'}); derived series to {node.dest.text}; "
        f"{engines.describe()}" + (f"; {len(rules.rules)} rules from {args.rules}" if rules else "")
    )
    try:
        while True:
            for folder in complete(node.incoming, args.quiet_seconds, args.series_size):
                with receiver.lock:  # never while an instance of it is being written
                    claimed = claim(folder, node.work)
                node.process(claimed)
            time.sleep(0.5)
    finally:
        node.stopping.set()
        receiver.stop()
        sender.join(timeout=40)
