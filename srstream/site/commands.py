"""The site's commands: `srstream serve SITE.toml` (every camera, until SIGTERM; SIGHUP reloads the file) and
`srstream verify SEGMENT ...` (recompute a recorded segment's provenance)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from srstream.site.config import SiteConfigError, load_site

if TYPE_CHECKING:
    from srstream.site.ray_placement import RaySite
    from srstream.site.server import Server

log = logging.getLogger("srstream.site")


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the site until SIGTERM or Ctrl-C (exit 0 once every segment is finished); SIGHUP reloads it."""
    site = load_site(args.site)
    if args.check:
        print(f"{site.path}: {len(site.cameras)} cameras: {', '.join(site.cameras)}", file=sys.stderr)
        return 0
    server: RaySite | Server
    if args.ray:
        from srstream.site.ray_placement import RaySite

        server = RaySite(site, args.ray)
    else:
        from srstream.site.server import Server

        server = Server(site)
    reload = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, lambda signum, frame: reload.set())
    try:
        server.start()
        where = f"; metrics on http://{site.metrics}/metrics" if site.metrics else ""
        log.warning("srstream serve: %d cameras from %s%s", len(site.cameras), site.path, where)
        while server.failed is None:
            server.tick()
            if reload.wait(0.5):
                reload.clear()
                _reload(server, args.site)
    except KeyboardInterrupt:  # SIGTERM arrives as this too (signals.interruptible)
        log.warning("srstream serve: stopping; finishing every segment")
        server.stop()
        return 0
    server.stop()
    return 1


def _reload(server, path: str) -> None:
    """Apply the file as it is now; a file that does not parse leaves everything running as it was."""
    try:
        site = load_site(path)
    except SiteConfigError as exc:
        log.error("srstream: error: %s; still running the previous configuration", exc)
        return
    touched = server.reload(site)
    log.warning(
        "srstream serve: reloaded %s: %s", path, ", ".join(touched) + " restarted" if touched else "nothing changed"
    )


def cmd_verify(args: argparse.Namespace) -> int:
    """Each segment: OK, or the checks that fail; exit 0 only when every segment passes."""
    from srstream.site.provenance import verify

    verdicts = [verify(Path(p), Path(args.weights) if args.weights else None) for p in args.segments]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "segment": str(v.segment),
                        "ok": v.ok,
                        "model": v.model,
                        "weights_sha256": v.weights_sha256,
                        "checks": [{"check": c, "ok": ok, "found": found} for c, ok, found in v.checks],
                    }
                    for v in verdicts
                ],
                indent=2,
            )
        )
    else:
        for v in verdicts:
            head = f"{v.segment}: {'OK' if v.ok else 'FAILED'}"
            if v.model:
                head += f": model {v.model}, weights sha256 {v.weights_sha256 or 'not recorded'}"
            print(head)
            for check, ok, found in v.checks:
                if not ok or args.verbose:
                    print(f"  {'ok ' if ok else 'BAD'} {check}: {found}")
    return 0 if all(v.ok for v in verdicts) else 1


def add_site_commands(sub: argparse._SubParsersAction) -> None:
    """`serve` and `verify` on srstream's command line."""
    serve = sub.add_parser(
        "serve",
        help="run a site of cameras (SITE.toml) until stopped: upscale, re-stream, "
        "record with provenance, metrics on /metrics and /healthz; SIGHUP reloads the file",
    )
    serve.add_argument("site", metavar="SITE.toml")
    serve.add_argument("--check", action="store_true", help="check the file and exit")
    serve.add_argument(
        "--ray",
        nargs="?",
        const="auto",
        metavar="ADDRESS",
        help="place the cameras on a Ray cluster's nodes (one engine each; a dead node's cameras "
        "move to the others): HOST:PORT of the head, 'auto' (default) or 'local'",
    )
    serve.set_defaults(func=cmd_serve)
    verify = sub.add_parser(
        "verify",
        help="check recorded segments against their provenance: sidecar, hashes, "
        "metadata, the original segments and the model's weights",
    )
    verify.add_argument("segments", nargs="+", metavar="SEGMENT")
    verify.add_argument("--weights", metavar="FILE", help="the model's weights file, where it is not shipped")
    verify.add_argument("--json", action="store_true")
    verify.add_argument("-v", "--verbose", action="store_true", help="list every check, not only those failing")
    verify.set_defaults(func=cmd_verify)
