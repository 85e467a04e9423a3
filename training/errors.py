"""The one root of every error srstream raises on purpose (`SrstreamError`), in the lowest package so that every
layer can derive from it. Each error also derives from the built-in it is a kind of (ValueError for bad input,
RuntimeError for what cannot run, OSError for what cannot be written), as PyAV's errors do, so code that catches
the built-in keeps working; a CLI catches `SrstreamError` and prints its one line."""

from __future__ import annotations


class SrstreamError(Exception):
    """An error srstream reports to its user: the message is one line that names the file or option at fault."""
