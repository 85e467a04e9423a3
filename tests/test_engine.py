"""The one engine on real images: backend parity, tiling equality, dtype and channel round trips, choices, errors."""
import numpy as np
import pytest
import torch

from srstream import backends
from srstream.engine import EngineError, Upscaler
from srstream.export import export_onnx, model_hash
from srstream.images import read_image
from srstream.inference_graph import fold_batchnorm
from srstream.models import ModelSpec, load_model, receptive_radius
from srstream.tiling import run_tiled
from training.architectures.srresnet import SRResNet, SRResNetConfig
from training.descriptor import ModelDescriptor

from assets import DATA, EXAMPLES


@pytest.fixture(scope="module")
def bn_spec():
    """An SRResNet with BatchNorm and non-trivial running statistics, so BN folding is really exercised."""
    torch.manual_seed(0)
    net = SRResNet(SRResNetConfig(blocks=3, width=24))
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    net.eval()
    descriptor = ModelDescriptor("bn-test", "srresnet", 4, 3, config=net.config.to_dict())
    return ModelSpec(net, descriptor, receptive_radius(net))


def real_frame(size=64) -> torch.Tensor:
    image = read_image(EXAMPLES / "foreman.png")[:size, :size]
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255


def test_batchnorm_folding_is_exact(bn_spec):
    x = real_frame(40)
    with torch.no_grad():
        assert torch.allclose(fold_batchnorm(bn_spec.module)(x), bn_spec.module(x), atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fold_batchnorm(bn_spec.module).modules())


@pytest.mark.parametrize("half", [False, True])
def test_onnx_export_matches_pytorch_on_a_real_image(bn_spec, tmp_path, half):
    import onnx
    import onnxruntime as ort

    path = export_onnx(bn_spec, tmp_path / "m.onnx", half=half)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    assert "BatchNormalization" not in {n.op_type for n in graph.graph.node}
    dims = [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] == "batch" and dims[2] == "height" and dims[3] == "width"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.cat([real_frame(48), real_frame(48).flip(-1)])[:, :, :40]  # batch 2, non-square
    got = session.run(None, {"lr": x.numpy()})[0]
    with torch.no_grad():
        want = bn_spec.module(x).numpy()
    assert got.shape == want.shape == (2, 3, 160, 192)
    assert np.abs(got - want).max() <= (1e-2 if half else 1e-3)


def test_onnxruntime_backend_matches_cpu_through_the_engine(fast_x4):
    image = read_image(DATA / "set5" / "bird.png")[:80, :96]
    cpu = fast_x4.upscale(image)
    ort = Upscaler("fast-x4", backend="onnxruntime").upscale(image)
    assert cpu.shape == ort.shape == (320, 384, 3)
    assert np.abs(cpu.astype(int) - ort.astype(int)).max() <= 1


def test_tiling_equals_the_untiled_output_on_a_real_image(bn_spec):
    x = real_frame(100)
    def fn(t):
        return bn_spec.module(t)
    with torch.no_grad():
        whole = fn(x)
        tiled = run_tiled(x, fn, 4, tile=32, pad=bn_spec.receptive_radius)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() <= 1 / 255


def test_engine_tiles_big_frames_to_the_same_result():
    image = read_image(EXAMPLES / "foreman.png")[:96, :128]
    whole = Upscaler("fast-x4", backend="cpu", tile=None).upscale(image)
    tiled = Upscaler("fast-x4", backend="cpu", tile=40).upscale(image)
    assert np.abs(whole.astype(int) - tiled.astype(int)).max() <= 1


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_dtype_round_trips(fast_x4, dtype):
    image = read_image(EXAMPLES / "foreman.png")[:32, :40]
    if dtype == np.uint16:
        image = image.astype(np.uint16) * 257
    elif dtype == np.float32:
        image = image.astype(np.float32) / 255
    out = fast_x4.upscale(image)
    assert out.dtype == dtype and out.shape == (128, 160, 3)
    batch = fast_x4.upscale(np.stack([image, image]))
    assert batch.shape == (2, 128, 160, 3) and np.array_equal(batch[0], out)


def test_grey_and_rgba_frames_and_torch_tensors():
    up = Upscaler("fast-x4", backend="cpu", batch_size=2)
    grey = read_image(DATA / "bridge.png")[:24, :24]
    assert grey.shape == (24, 24, 1) and up.upscale(grey).shape == (96, 96, 1)
    assert up.upscale(grey[..., 0]).shape == (96, 96)
    rgba = np.concatenate([read_image(EXAMPLES / "foreman.png")[:16, :16], np.full((16, 16, 1), 200, np.uint8)], 2)
    out = up.upscale(rgba)
    assert out.shape == (64, 64, 4) and abs(int(out[..., 3].mean()) - 200) <= 1
    t = (real_frame(24) * 255).to(torch.uint8).repeat(3, 1, 1, 1)
    y = up.upscale(t)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.uint8 and y.shape == (3, 3, 96, 96)


def test_auto_picks_tensorrt_only_where_it_can_run_the_precision(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(backends, "tensorrt_available", lambda: True)
    assert backends.resolve("auto") == backends.resolve("auto", "fp16") == "tensorrt"
    assert backends.resolve("auto", "fp32") == backends.resolve("auto", "bf16") == "cuda"  # TensorRT is fp16 only


def test_tensorrt_counts_only_a_runtime_that_imports_and_supports_the_gpu(monkeypatch):
    pytest.importorskip("tensorrt_rtx")
    from srstream.backends import tensorrt_build

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    runtime = tensorrt_build.find_runtime()
    if not runtime.is_rtx:
        pytest.skip("full TensorRT is installed here")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 6))
    assert backends.tensorrt_available()  # an RTX 30xx
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    assert not backends.tensorrt_available()  # Hopper: not one of TensorRT-RTX's targets

    def broken(prefer=None):
        raise tensorrt_build.TensorRTError("no TensorRT here")

    monkeypatch.setattr(tensorrt_build, "find_runtime", broken)  # e.g. PyPI's download stub
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (8, 6))
    assert not backends.tensorrt_available()


def test_auto_backend_choice_and_clear_errors(fast_x4, monkeypatch):
    expected = "tensorrt" if backends.tensorrt_available() else "cuda" if torch.cuda.is_available() else "cpu"
    assert backends.resolve("auto") == expected
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert backends.resolve("auto") == "cpu"
    with pytest.raises(EngineError, match="backend 'cuda'"):
        Upscaler("fast-x4", backend="cuda")
    with pytest.raises(EngineError, match="backend 'tensorrt'"):
        Upscaler("fast-x4", backend="tensorrt")
    with pytest.raises(EngineError, match="unknown backend 'vulkan'"):
        Upscaler("fast-x4", backend="vulkan")
    with pytest.raises(EngineError, match="expected an image"):
        fast_x4.upscale(np.zeros((2, 3, 4, 5, 6), np.uint8))


def test_model_hash_changes_with_the_model(bn_spec):
    other = load_model("fast-x4")
    assert model_hash(bn_spec) != model_hash(other)
    assert model_hash(load_model("fast-x4")) == model_hash(other)
    tweaked = load_model("fast-x4")
    with torch.no_grad():
        next(tweaked.module.parameters()).view(-1)[0] += 1e-3
    assert model_hash(tweaked) != model_hash(other)


class _Bicubic(torch.nn.Module):
    """Upsampling that commutes with every flip and transpose, so a self-ensemble must leave it unchanged."""

    def forward(self, x):
        return torch.nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)


class _VerticalBlur(torch.nn.Module):
    """Blur along the height only: commutes with flips, not with transposes (like a slab model's direction)."""

    def forward(self, x):
        k = torch.tensor([0.25, 0.5, 0.25]).view(1, 1, 3, 1).expand(x.shape[1], 1, 3, 1)
        return torch.nn.functional.conv2d(torch.nn.functional.pad(x, (0, 0, 1, 1), mode="replicate"), k,
                                          groups=x.shape[1])


def test_self_ensemble_maps_every_view_back():
    # Not square, so a view left transposed could not even be added up; values must match to float precision.
    x = real_frame(64)[..., :52]
    spec = ModelSpec(_Bicubic(), ModelDescriptor("bicubic", "bicubic", 2, 3), 4)
    plain = Upscaler(spec, backend="cpu", tile=None, precision="fp32").upscale_tensor(x)
    ensemble = Upscaler(spec, backend="cpu", tile=None, tta=True, precision="fp32").upscale_tensor(x)
    assert ensemble.shape == plain.shape == (1, 3, 128, 104)
    assert (ensemble - plain).abs().max() < 1e-5


@pytest.mark.parametrize("training", [{"degradation": "slab", "thickness": 4}, {"degradation": "acquisition"}])
def test_a_through_plane_model_is_never_transposed(training):
    x = real_frame(48)[:, :1]
    # one ratio (mri-thick-x4) or any (mri-thick), described from a card as a shipped one is
    card = {"architecture": "blur", "config": {}, "scale": 1, "channels": 1, "training": training}
    blur = ModelSpec(_VerticalBlur(), ModelDescriptor.from_card(card), 1)
    fp32 = dict(backend="cpu", precision="fp32")
    plain = Upscaler(blur, **fp32).upscale_tensor(x)
    flips = Upscaler(blur, tta=True, **fp32).upscale_tensor(x)
    assert (flips - plain).abs().max() < 1e-5  # only flips were used: they commute with a vertical blur
    all_views = Upscaler(ModelSpec(_VerticalBlur(), ModelDescriptor("blur", "blur", 1, 1), 1), tta=True, **fp32)
    assert (all_views.upscale_tensor(x) - plain).abs().max() > 1e-3  # an ordinary model gets the transposes too


def test_self_ensemble_is_closer_to_the_original_on_real_photos(fast_x4):
    from training.evaluate import benchmark_lr
    from training.metrics import psnr_y

    for name in ("bird.png", "head.png"):
        hr, lr = benchmark_lr(read_image(DATA / "set5" / name), 4)
        plain = fast_x4.upscale(lr)
        ensemble = Upscaler("fast-x4", backend="cpu", tta=True).upscale(lr)
        assert psnr_y(ensemble, hr, 4) > psnr_y(plain, hr, 4) + 0.02
