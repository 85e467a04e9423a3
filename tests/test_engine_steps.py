"""The engine's steps, each alone on a real image: frame formats, padding, self-ensemble, tile budget, batches."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srstream.backend_call import run_batches
from srstream.backends import PIPELINED_UPLOAD
from srstream.errors import EngineError
from srstream.frame_format import NumpyFrames, fit_channels, from_float, to_float
from srstream.images import read_image
from srstream.padding import run_padded
from srstream.tile_budget import MIN_TILE, TileBudget, run_shrinking
from srstream.tta import self_ensemble, tta_views

from assets import EXAMPLES


def image() -> np.ndarray:
    return read_image(EXAMPLES / "foreman.png")[:45, :61]


def nearest(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


def test_frames_round_trip_with_alpha_and_grey():
    rgba = np.concatenate([image(), np.full((*image().shape[:2], 1), 77, np.uint8)], 2)
    parts = NumpyFrames.split(rgba)
    x = parts.color_nchw(lambda t: t)
    assert x.shape == (1, 3, 45, 61) and x.dtype == torch.float32
    back = parts.join(x, lambda t: t)
    assert back.shape == rgba.shape and (back == rgba).all()
    assert from_float(to_float(torch.tensor([0, 65535], dtype=torch.uint16)), torch.uint16).tolist() == [0, 65535]
    grey, was_grey = fit_channels(x[:, :1], 3, "m")
    assert was_grey and grey.shape == x.shape
    with pytest.raises(EngineError, match="model m takes 1-channel frames, got 3 channels"):
        fit_channels(x, 1, "m")


def test_padding_runs_on_multiples_and_crops_back():
    x = to_float(torch.from_numpy(image()).permute(2, 0, 1)[None])
    seen = []
    y = run_padded(lambda t: seen.append(t.shape[-2:]) or nearest(t), x, multiple=8, scale=2)
    assert seen == [(48, 64)] and y.shape[-2:] == (90, 122) and torch.equal(y, nearest(x))


def test_self_ensemble_of_an_equivariant_function_is_the_function():
    x = to_float(torch.from_numpy(image()).permute(2, 0, 1)[None])
    assert len(tta_views()) == 8 and len(tta_views(transpose=False)) == 4
    assert (self_ensemble(x, nearest) - nearest(x)).abs().max() < 1e-6


def test_tile_budget_and_shrinking_on_out_of_memory():
    budget = TileBudget(tile=0, memory_budget=1000 * 10, bytes_per_pixel=10, device=torch.device("cpu"))
    assert budget.tile_size(20, 50) == 0 and budget.tile_size(100, 100) == MIN_TILE
    budget.memory_budget = 10 * 100 * 100
    assert budget.tile_size(100, 100) == 0 and budget.tile_size(200, 200) == 100
    big = to_float(torch.from_numpy(read_image(EXAMPLES / "foreman.png")[:90, :122]).permute(2, 0, 1)[None])
    sides = []

    def short_of_memory(t: torch.Tensor) -> torch.Tensor:
        sides.append(max(t.shape[-2:]))
        if max(t.shape[-2:]) > 70:
            raise torch.cuda.OutOfMemoryError("pretend")
        return nearest(t)

    assert torch.equal(run_shrinking(big, short_of_memory, 2, 0, 0), nearest(big)) and sides[:2] == [122, 61]
    x = big[..., :45, :61]
    with pytest.raises(EngineError, match="out of GPU memory even with 61px tiles"):
        run_shrinking(x, lambda t: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("pretend")), 2, 0, 0)


class Uploading:
    """A backend that declares PIPELINED_UPLOAD and records the order of its uploads and runs."""

    name, device, precision, dtype = "log", torch.device("cpu"), "fp32", torch.float32
    capabilities = frozenset({PIPELINED_UPLOAD})

    def __init__(self) -> None:
        self.events: list[str] = []

    def upload(self, x: torch.Tensor):
        self.events.append(f"up{len(x)}")
        return x, None

    def run(self, x: torch.Tensor, uploaded=None) -> torch.Tensor:
        self.events.append(f"run{len(x)}")
        return nearest(x)

    __call__ = run


def test_batches_pipeline_only_where_the_backend_declares_it():
    x = to_float(torch.from_numpy(image()).permute(2, 0, 1)[None]).repeat(5, 1, 1, 1)
    backend = Uploading()
    assert torch.equal(run_batches(x, 2, nearest, backend), nearest(x))
    assert backend.events == ["up2", "up2", "run2", "up1", "run2", "run1"]  # i+1 uploads before i runs
    backend.capabilities = frozenset()
    backend.events.clear()
    assert torch.equal(run_batches(x, 2, backend, backend), nearest(x)) and backend.events == ["run2", "run2",
                                                                                                "run1"]
