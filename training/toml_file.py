"""A TOML file a user wrote (a training config, a site file, a node's routing rules), read with one-line errors that
name the file and, for bad TOML, the line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any


def read_toml(path: Path, error: type[Exception]) -> dict[str, Any]:
    """The parsed file; raises `error` with one line ('PATH: no such file', 'PATH: not valid TOML: line 3: Invalid
    value', ...)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        message, _, at = str(exc).rpartition(" (at ")  # tomllib (3.11) keeps the line only in its message
        line = re.match(r"line (\d+)", at)
        raise error(f"{path}: not valid TOML: {f'line {line[1]}' if line else 'end of file'}: {message}") from None
