"""Shared paths and helpers for the tests; every input is a real file under tests/data or examples/."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from assets import DATA, EXAMPLES, ROOT  # noqa: F401 - the paths live in assets.py; older imports find them here


def times_of(path: str | Path) -> list[float]:
    """The presentation times (seconds) of every decoded frame of a video's first video stream."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [float(f.pts * v.time_base) for f in c.decode(video=0)]


@pytest.fixture(scope="session")
def fast_x4():
    """One shipped fast-x4 engine on the CPU for the tests that only run it (tests of options build their own)."""
    from srstream.engine import Upscaler

    return Upscaler("fast-x4", backend="cpu")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for a server a test starts, or to find nobody there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_config(tmp_path: Path, **sections) -> dict:
    """A fast training config on the two real BSD68 images in tests/data/train."""
    from training.config import load_config

    overrides = [f'out_dir="{tmp_path / "run"}"', f'data.train=["{DATA / "train"}"]', "data.patch_size=32",
                 "data.workers=0", "train.batch_size=4", "train.steps=4", "model.blocks=2", "model.width=16",
                 "model.batch_norm=false", "log.every=1", "log.sample_every=0", "log.checkpoint_every=2"]
    for section, values in sections.items():
        overrides += [f"{section}.{k}={v}" if section != "top" else f"{k}={v}" for k, v in values.items()]
    return load_config(None, overrides)


@pytest.fixture
def tiny(tmp_path):
    return lambda **sections: tiny_config(tmp_path, **sections)


_SPEEDS: dict[tuple, float] = {}


def engine_fps(model: str, width: int, height: int, batch: int = 1) -> float:
    """Frames a second the engine gives here for `model` on width x height frames in batches of `batch` (default
    backend and precision, as srstream picks them): timing thresholds follow from this machine's own speed."""
    key = (model, width, height, batch)
    if key not in _SPEEDS:
        import time

        import torch

        from srstream.engine import Upscaler

        upscaler = Upscaler(model, tile=None, batch_size=batch)
        x = torch.rand(batch, 3, height, width)
        upscaler.upscale_tensor(x)  # warm-up: first-call allocations and kernel choice
        frames, started = 0, time.perf_counter()
        while frames < 2 * batch or time.perf_counter() - started < 1.0:
            upscaler.upscale_tensor(x)
            frames += batch
        _SPEEDS[key] = frames / (time.perf_counter() - started)
    return _SPEEDS[key]


class LogWatch:
    """Reads a process's stderr as it comes (tqdm writes with carriage returns, not lines) so that a test can wait
    for something the process says instead of sleeping a fixed time."""

    def __init__(self, stream) -> None:  # a binary pipe (Popen without text=True)
        import threading

        self.text = ""
        self._changed = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        while chunk := stream.read1(4096):
            with self._changed:
                self.text += chunk.decode(errors="replace")
                self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> bool:
        """Wait until the output so far matches the regular expression `pattern`."""
        import re

        with self._changed:
            return self._changed.wait_for(lambda: re.search(pattern, self.text) is not None, timeout)
