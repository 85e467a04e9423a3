"""`srmed`: batch super-resolution of MRI/CT volumes (`medical.commands`).

This entry point imports nothing heavy before it handles signals, so that Ctrl-C or SIGTERM at any moment, even
while torch loads, ends with one line and exit 130 (volumes are written under temporary names: never half-written).
"""
from __future__ import annotations

import sys

from srstream.signals import interruptible


def main(argv: list[str] | None = None) -> int:
    """Run srmed: 0 done, 1 if any volume failed (one line each on stderr), 130 interrupted."""
    def load():
        from medical.commands import run_command  # torch and the rest: signals are held until this returns

        return lambda: run_command(argv)

    return interruptible("srmed", load)


if __name__ == "__main__":
    sys.exit(main())
