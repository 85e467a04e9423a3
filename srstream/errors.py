"""The engine's one error type, here so that each of its steps can raise it without importing the engine."""

from __future__ import annotations

from training.errors import SrstreamError


class EngineError(SrstreamError, RuntimeError):
    """The engine cannot run as asked (backend missing, out of memory at the smallest tile, bad frames)."""
