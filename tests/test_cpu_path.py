"""The fast CPU path: bf16 where the CPU has it (fp32 when forced or absent), the sub-pixel tail rewrite, and tiling
only when a frame's activations would not fit the memory budget."""
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from srstream.backends.precision import cpu_has_native_bf16, resolve_precision
from srstream.engine import EngineError, Upscaler
from srstream.inference_graph import fold_batchnorm, inference_graph
from srstream.models import load_model
from training.architectures.srresnet import SRResNet, SRResNetConfig

from assets import EXAMPLES


def sample_frames(count=2) -> np.ndarray:
    """Real 320x180 frames of the bundled clip."""
    with av.open(str(EXAMPLES / "vtest_320x180.mp4")) as c:
        return np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(count), c.decode(video=0))])


@pytest.fixture
def cpu_caps(monkeypatch):
    """Pretend the CPU has (or lacks) native bf16."""
    def set_caps(bf16: bool, amx: bool = False):
        caps = dict(torch.cpu.get_capabilities(), avx512_bf16=bf16, amx_bf16=amx)
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    return set_caps


def test_bf16_is_chosen_only_where_the_cpu_has_it(cpu_caps):
    cpu = torch.device("cpu")
    cpu_caps(bf16=False)
    assert not cpu_has_native_bf16() and resolve_precision("auto", cpu) == "fp32"
    assert Upscaler("fast-x4", backend="cpu").label == "cpu fp32"
    cpu_caps(bf16=True)
    assert resolve_precision("auto", cpu) == "bf16"
    up = Upscaler("fast-x4", backend="cpu")
    assert up.label == "cpu bf16" and next(up.backend.module.parameters()).dtype == torch.bfloat16
    cpu_caps(bf16=False, amx=True)
    assert resolve_precision("auto", cpu) == "bf16"
    forced = Upscaler("fast-x4", backend="cpu", precision="fp32")
    assert forced.label == "cpu fp32" and next(forced.backend.module.parameters()).dtype == torch.float32


def test_this_machines_default_follows_its_cpu_flags():
    # The kernel's own list of CPU flags, independent of torch's capability report.
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo here")
    flags = set(next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")), "").split())
    expected = "bf16" if flags & {"avx512_bf16", "amx_bf16"} else "fp32"
    assert Upscaler("fast-x4", backend="cpu").precision == expected


def test_fp16_on_the_cpu_and_unknown_precisions_are_one_line_errors():
    with pytest.raises(EngineError, match="fp16 needs a CUDA GPU"):
        Upscaler("fast-x4", backend="cpu", precision="fp16")
    with pytest.raises(EngineError, match="unknown precision 'int8'"):
        Upscaler("fast-x4", backend="cpu", precision="int8")


def test_bf16_and_fp32_agree_within_one_level_on_a_real_frame():
    frame = sample_frames(1)[0]
    fp32 = Upscaler("srresnet-x4", backend="cpu", precision="fp32").upscale(frame).astype(int)
    bf16 = Upscaler("srresnet-x4", backend="cpu", precision="bf16").upscale(frame).astype(int)
    assert fp32.shape == bf16.shape == (720, 1280, 3)
    assert np.abs(fp32 - bf16).mean() < 1.0
    assert np.abs(fp32 - bf16).max() > 0  # it really ran in another format


def test_subpixel_tail_rewrite_is_the_same_function():
    x = torch.from_numpy(sample_frames(1)[0][:40, :56]).permute(2, 0, 1)[None].double() / 255
    shipped = load_model("srresnet-x4").module.double()
    fused = inference_graph(shipped)
    assert isinstance(fused.tail, torch.nn.Sequential)  # really rewritten: conv on sub-pixels, then a shuffle
    with torch.no_grad():
        assert (fused(x) - shipped(x)).abs().max() < 1e-9
        for config in (SRResNetConfig(scale=2, blocks=1, width=8), SRResNetConfig(scale=8, blocks=1, width=8,
                                                                                  image_skip=True)):
            net = SRResNet(config).eval().double()
            assert (inference_graph(net)(x) - fold_batchnorm(net)(x)).abs().max() < 1e-9


def test_a_video_frame_is_not_tiled_and_a_frame_over_the_budget_is_tiled_exactly():
    up = Upscaler("srresnet-x4", backend="cpu", precision="fp32", batch_size=4)
    assert up._tile_size(180, 320, 4) == 0  # ordinary video is never tiled, with this machine's own budget
    up.memory_budget = 8 << 30  # a laptop's share: 4 frames of 320x180 fit whole, one 1080p frame does not
    assert up._tile_size(180, 320, 4) == 0 and up._tile_size(1080, 1920, 1) > 0
    frames = torch.from_numpy(sample_frames(2)).permute(0, 3, 1, 2).float() / 255
    small = Upscaler("fast-x4", backend="cpu", precision="fp32", batch_size=2)
    whole = small.upscale_tensor(frames)
    # A budget that holds a third of the batch: the engine must tile, and the stitched result is the same.
    small.memory_budget = 320 * 180 * small.activation_bytes() * 2 // 3
    tile = small._tile_size(180, 320, 2)
    assert 0 < tile < 180
    calls = []
    run = small.backend.run
    small.backend.run = lambda x, *a, **kw: calls.append(tuple(x.shape)) or run(x, *a, **kw)
    tiled = small.upscale_tensor(frames)
    assert calls and all(max(s[-2:]) <= tile + 2 * small.spec.receptive_radius for s in calls)
    assert tiled.shape == whole.shape and (tiled - whole).abs().max() < 1e-5
