"""SIGTERM (a service manager or `kill` stopping us) handled as Ctrl-C: every front door finishes what it has."""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises KeyboardInterrupt; only the main thread can install a handler, so
    elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def interruptible(prog: str, load: Callable[[], Callable[[], int]]) -> int:
    """A command's entry point: `load()` does the heavy imports and returns the command to run. Ctrl-C or SIGTERM
    at any moment ends with one line and exit 130. During `load` a signal is only noted and acted on once it
    returns: some libraries import optional parts under a bare `except:` that would swallow a KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():  # no handlers there: run as it is
        return load()()
    noted: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: noted.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        run = load()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    try:
        if noted:
            raise KeyboardInterrupt
        with sigterm_as_interrupt():
            return run()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def run_command(prog: str, module: str, argv: list[str] | None) -> int:
    """`module.run_command(argv)` under `interruptible`: the module, and torch with it, is imported with signals
    held, so a front door's entry point imports nothing heavy before it handles them."""

    def load() -> Callable[[], int]:
        run = importlib.import_module(module).run_command
        return lambda: run(argv)

    return interruptible(prog, load)


def exit_after(main: Callable[[], int]) -> NoReturn:
    """A process's entry point: run `main` and exit with its status. Once it has returned, its work is finished or
    cleaned up, so a late Ctrl-C or SIGTERM is ignored: at shutdown Python gives SIGINT back its default action,
    which would kill a finished run with no message (a parent sees -2 instead of 0 or 130)."""
    code = 130
    try:
        code = main()
    except KeyboardInterrupt:  # in the instant after `main` returned, before the handlers below
        pass
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
    sys.exit(code)
