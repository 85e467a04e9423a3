"""The backend registry: a backend defined here (bicubic on torch) registers in one call and runs a real image
through the engine; `auto` keeps its order and unknown names say what there is."""
import pytest
import torch
import torch.nn.functional as F

from srstream import backends
from srstream.backends import Availability, BackendType
from srstream.engine import EngineError, Upscaler
from srstream.images import read_image
from srstream.models import ModelSpec

from assets import EXAMPLES


class Bicubic:
    """A running backend: bicubic upscaling by the model's scale, on the CPU; declares no capabilities."""

    name = "bicubic-test"
    device = torch.device("cpu")
    precision = "fp32"
    dtype = torch.float32
    capabilities: frozenset[str] = frozenset()

    def __init__(self, scale: int) -> None:
        self.scale = scale
        self.calls: list[tuple[int, ...]] = []

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        return F.interpolate(x.float(), scale_factor=self.scale, mode="bicubic", align_corners=False)


class BicubicType(BackendType):
    name = "bicubic-test"
    fixed_precision = "fp32"

    def create(self, spec: ModelSpec, precision: str, **options) -> Bicubic:
        return Bicubic(spec.scale)


@pytest.fixture
def bicubic():
    backends.register(BicubicType())
    yield
    backends.unregister("bicubic-test")


def test_a_registered_backend_runs_a_real_image_through_the_engine(bicubic):
    image = read_image(EXAMPLES / "foreman.png")[:72, :88]
    up = Upscaler("fast-x4", backend="bicubic-test", tile=32)
    assert up.backend_name == "bicubic-test" and up.label == "bicubic-test fp32"
    out = up.upscale(image)
    assert out.shape == (72 * 4, 88 * 4, 3) and out.dtype == image.dtype
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    whole = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False).clamp(0, 1)
    expected = (whole * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    # Tiled with enough context (the engine's receptive radius is the model's, wider than bicubic's 2 px).
    assert abs(out.astype(int) - expected.astype(int)).max() <= 1
    assert len(up.backend.calls) > 1 and all(max(s[-2:]) <= 32 + 2 * up.spec.receptive_radius
                                             for s in up.backend.calls)
    with pytest.raises(EngineError, match="backend 'bicubic-test' runs fp32 only, not bf16"):
        Upscaler("fast-x4", backend="bicubic-test", precision="bf16")


def test_auto_keeps_its_order_and_a_ranked_backend_joins_it(bicubic, monkeypatch):
    assert "bicubic-test" in backends.names() and "bicubic-test" not in backends.NAMES
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert backends.resolve("auto") == "cpu"  # unranked: `auto` never picks it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(backends, "tensorrt_available", lambda: True)
    assert backends.resolve("auto") == "tensorrt" and backends.resolve("auto", "fp32") == "cuda"
    monkeypatch.setattr(backends, "tensorrt_available", lambda: False)
    assert backends.resolve("auto") == "cuda"
    monkeypatch.setattr(BicubicType, "auto_rank", -1)
    assert backends.resolve("auto", "fp32") == "bicubic-test" and backends.resolve("auto", "bf16") == "cuda"


def test_unknown_and_unavailable_backends_say_why(bicubic, monkeypatch):
    with pytest.raises(EngineError, match="unknown backend 'vulkan': use one of auto, tensorrt, cuda, cpu, "
                                          "onnxruntime, bicubic-test"):
        Upscaler("fast-x4", backend="vulkan")
    monkeypatch.setattr(BicubicType, "available", lambda self: Availability(False, "no bicubic on Tuesdays"))
    with pytest.raises(EngineError, match="backend 'bicubic-test': no bicubic on Tuesdays"):
        Upscaler("fast-x4", backend="bicubic-test")
    with pytest.raises(ValueError, match="already registered"):
        backends.register(BicubicType())
