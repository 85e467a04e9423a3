"""Shared paths and helpers for the tests; every input is a real file under tests/data or examples/."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
EXAMPLES = ROOT / "examples"


def times_of(path: str | Path) -> list[float]:
    """The presentation times (seconds) of every decoded frame of a video's first video stream."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        return [float(f.pts * v.time_base) for f in c.decode(video=0)]


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
