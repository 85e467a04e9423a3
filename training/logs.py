"""Where a command's log records go: one line each on the standard error of the moment (so a caller that swaps
`sys.stderr`, as a test harness does, still gets them), in the command's own format."""

from __future__ import annotations

import logging
import sys

# Libraries whose records our own one-line messages already cover (pynetdicom logs each failed association, at
# ERROR, in several lines of its own words): silenced in a command's log.
QUIET_LIBRARIES = ("pynetdicom",)
OURS = ("training", "srstream", "medical", "demo")


class CurrentStderr(logging.Handler):
    """Writes each record to whatever `sys.stderr` is when it is emitted, and flushes it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never fail the run; Handler reports it its own way
            self.handleError(record)


def log_to_stderr(fmt: str = "%(message)s", level: int = logging.INFO, datefmt: str | None = None) -> None:
    """Send records of `level` and above to standard error in `fmt`, replacing an earlier call's handler."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, CurrentStderr)]:
        root.removeHandler(handler)
    handler = CurrentStderr()
    handler.setFormatter(logging.Formatter(fmt, datefmt))
    root.addHandler(handler)
    # Our own records from `level`; other libraries' only from WARNING (their INFO is not this command's to show).
    root.setLevel(max(level, logging.WARNING))
    for name in OURS:
        logging.getLogger(name).setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.CRITICAL)
