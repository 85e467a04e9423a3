"""srstream/backends: each built-in backend is one module that registers its type; here the CPU ones run a real
model and agree with the plain network, and the GPU ones say in one line why they cannot run on this machine."""

import numpy as np
import pytest
import torch

from srstream.backends import registry
from srstream.backends.onnxruntime_backend import OnnxRuntimeBackend, OnnxRuntimeType
from srstream.backends.tensorrt_backend import TensorRTType, tensorrt_available
from srstream.backends.torch_eager import TorchBackend, TorchCpuType, TorchCudaType
from srstream.images import read_image
from srstream.models import load_model

from assets import EXAMPLES


def _lr() -> torch.Tensor:
    """A 48x64 crop of the example photo, as the engine hands it to a backend: float NCHW in [0, 1]."""
    image = read_image(EXAMPLES / "foreman.png")
    crop = np.ascontiguousarray(image[:48, :64, :3])
    return torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255


def test_each_backend_module_registers_one_type_in_the_order_auto_and_errors_list():
    assert registry.names() == ("auto", "tensorrt", "cuda", "cpu", "onnxruntime")
    kinds = {"tensorrt": TensorRTType, "cuda": TorchCudaType, "cpu": TorchCpuType, "onnxruntime": OnnxRuntimeType}
    for name, kind in kinds.items():
        assert isinstance(registry.backend_type(name), kind)
    with pytest.raises(registry.BackendUnavailable, match="unknown backend 'vulkan': use one of auto, tensorrt"):
        registry.backend_type("vulkan")


def test_the_cpu_backends_run_a_shipped_model_as_the_plain_network_does():
    spec = load_model("fast-x4")
    x = _lr()
    with torch.no_grad():
        want = spec.module(x)
    cpu = registry.create("cpu", spec, "fp32")
    assert isinstance(cpu, TorchBackend) and cpu.precision == "fp32"
    assert torch.allclose(cpu(x).float(), want, atol=1e-5)
    onnx = registry.create("onnxruntime", spec)
    assert isinstance(onnx, OnnxRuntimeBackend)
    assert (onnx(x).float() - want).abs().max() < 1e-4  # ONNX Runtime's own fp32 kernels


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_the_gpu_backends_say_in_one_line_why_they_cannot_run_here():
    assert not tensorrt_available()
    for name in ("tensorrt", "cuda"):
        availability = registry.backend_type(name).available()
        assert not availability and availability.reason and "\n" not in availability.reason
        with pytest.raises(registry.BackendUnavailable, match=f"^backend '{name}': "):
            registry.resolve(name)
    assert registry.resolve("auto") == "cpu"
