"""Credentials out of everything srstream writes: a camera URL's user and password (rtsp://admin:PASS@host/...)
become `***` in log lines, `--json`, error messages, metadata, sidecars, metrics and /healthz."""

from __future__ import annotations

import logging
import re

# scheme://userinfo@ : the userinfo part runs to the last '@' before the host (a password may hold '@' unescaped).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/\s@]*(?:@[^/\s@]*)*)@")


def redact(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by ***."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


class RedactingFilter(logging.Filter):
    """A handler filter that formats each record and removes the credentials from the message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def redact_logging() -> None:
    """Put the filter on every handler of the root logger (after `training.logs.log_to_stderr`)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
