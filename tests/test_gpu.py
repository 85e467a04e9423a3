"""What only a CUDA GPU can check (skipped elsewhere; benchmarks/device/gpu_check.sh runs them on a lent one): CUDA
graphs equal eager, a short last batch reuses the full batch's graph, the device-side YUV conversion equals the
CPU's, and the GPU-resident pipeline's output stays within one level of the CPU's."""
import numpy as np
import pytest
import torch

from srstream.engine import Upscaler
from srstream.images import read_image

from assets import EXAMPLES

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def frames(n=3) -> torch.Tensor:
    image = read_image(EXAMPLES / "foreman.png")[:96, :160]
    x = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
    return torch.stack([x, x.flip(-1), x.flip(-2)][:n])


def test_cuda_graphs_equal_eager_and_a_short_batch_reuses_the_full_graph():
    eager = Upscaler("srresnet-x4", backend="cuda", tile=None, batch_size=3, graphs=False)
    graphed = Upscaler("srresnet-x4", backend="cuda", tile=None, batch_size=3)
    x = frames(3).cuda()
    assert (graphed.upscale_tensor(x) - eager.upscale_tensor(x)).abs().max() < 1e-3
    assert list(graphed.backend._graphs) == [(3, 3, 96, 160)]
    short = graphed.upscale_tensor(x[:2])
    assert (short - eager.upscale_tensor(x[:2])).abs().max() < 1e-3
    assert list(graphed.backend._graphs) == [(3, 3, 96, 160)]  # padded into the full batch's graph


def test_fp16_graphs_within_one_level_of_cpu_fp32():
    image = read_image(EXAMPLES / "foreman.png")[:64, :96]
    gpu = Upscaler("srresnet-x4", backend="cuda", tile=None).upscale(image)
    cpu = Upscaler("srresnet-x4", backend="cpu", tile=None, precision="fp32").upscale(image)
    assert np.abs(gpu.astype(int) - cpu.astype(int)).max() <= 1


def test_yuv_conversion_on_the_gpu_equals_the_cpus():
    from srstream.video.colour import Colour
    from srstream.video.yuv import layout_of, planes_to_rgb, rgb_to_planes

    x = frames(2)
    for pix_fmt in ("yuv420p", "yuv420p10le", "nv12"):
        layout, colour = layout_of(pix_fmt), Colour(1, 1, 10 if "10" in pix_fmt else 8)
        cpu = rgb_to_planes(x, layout, colour)
        gpu = rgb_to_planes(x.cuda(), layout, colour)
        assert all((a - b.cpu()).abs().max() <= 1 for a, b in zip(cpu, gpu))
        back_cpu, back_gpu = planes_to_rgb(cpu, layout, colour), planes_to_rgb([p.cuda() for p in cpu], layout, colour)
        assert (back_cpu - back_gpu.cpu()).abs().max() < 1e-5


def test_gpu_resident_pipeline_matches_the_cpu_pipeline(tmp_path):
    av = pytest.importorskip("av")
    from srstream.video import EncodeOptions, Settings, upscale_video

    from assets import DATA

    clip = str(DATA / "video" / "vtest_320x180_2s.mp4")
    lossless = EncodeOptions(codec="libx264", crf=0, preset="ultrafast")
    for backend in ("cuda", "cpu"):
        upscale_video(clip, tmp_path / f"{backend}.mkv", Upscaler("fast-x4", backend=backend, precision="fp32"
                      if backend == "cpu" else "auto"), Settings(options=lossless, duration=0.4), progress=False)
    decoded = {}
    for backend in ("cuda", "cpu"):
        with av.open(str(tmp_path / f"{backend}.mkv")) as c:
            decoded[backend] = [f.to_ndarray() for f in c.decode(video=0)]
    assert len(decoded["cuda"]) == len(decoded["cpu"]) == 10
    for a, b in zip(decoded["cuda"], decoded["cpu"]):
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 0.5
