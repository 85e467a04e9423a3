"""`srmed`: batch super-resolution of MRI/CT volumes (`medical.commands`).

This entry point imports nothing heavy before it handles signals, so that Ctrl-C or SIGTERM at any moment, even
while torch loads, ends with one line and exit 130 (volumes are written under temporary names: never half-written).
"""

from __future__ import annotations

from srstream.signals import exit_after, run_command


def main(argv: list[str] | None = None) -> int:
    """Run srmed: 0 done, 1 if any volume failed (one line each on stderr), 130 interrupted."""
    return run_command("srmed", "medical.commands", argv)


def entry() -> None:
    """The console script: `main` on the command line, exiting with its status."""
    exit_after(main)


if __name__ == "__main__":
    entry()
