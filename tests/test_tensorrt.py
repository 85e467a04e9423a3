"""TensorRT: cache keys and profiles on any machine; engine build and fp16 parity where tensorrt and a GPU exist."""
import importlib.util

import numpy as np
import pytest
import torch

from conftest import EXAMPLES
from srstream.backends.tensorrt_backend import Profile, engine_key
from srstream.export import export_onnx, model_hash
from srstream.images import read_image
from srstream.models import load_model

HAS_TRT = importlib.util.find_spec("tensorrt") is not None and torch.cuda.is_available()


def test_engine_key_changes_with_model_gpu_version_and_profile():
    spec = load_model("fast-x4")
    base = dict(model_sha=model_hash(spec), gpu_name="NVIDIA H100 80GB HBM3", trt_version="11.0.0",
                profile=Profile(channels=3))
    key = engine_key(**base)
    assert key == engine_key(**base)
    assert key != engine_key(**{**base, "model_sha": model_hash(load_model("srresnet-x4"))})
    assert key != engine_key(**{**base, "gpu_name": "NVIDIA A100"})
    assert key != engine_key(**{**base, "trt_version": "11.1.0"})
    assert key != engine_key(**{**base, "profile": Profile(channels=3, batch=(1, 8, 16))})


def test_profile_covers_the_shapes_it_was_built_for():
    p = Profile(channels=3, batch=(1, 4, 8), height=(16, 270, 1088), width=(16, 480, 1920))
    assert p.shapes()[1] == (4, 3, 270, 480)
    assert p.covers((8, 3, 270, 480)) and not p.covers((9, 3, 270, 480)) and not p.covers((1, 1, 270, 480))


def test_fp16_onnx_for_strongly_typed_tensorrt_has_fp16_weights_and_fp32_io(tmp_path):
    import onnx
    from onnx import TensorProto

    path = export_onnx(load_model("fast-x4"), tmp_path / "fast-fp16.onnx", half=True)
    graph = onnx.load(str(path)).graph
    assert graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    conv_weights = {n.input[1] for n in graph.node if n.op_type == "Conv"}
    assert conv_weights and all(i.data_type == TensorProto.FLOAT16 for i in graph.initializer if i.name in conv_weights)


@pytest.mark.skipif(not HAS_TRT, reason="needs the tensorrt package and a CUDA GPU")
def test_tensorrt_fp16_matches_fp32_within_one_level(tmp_path):
    from srstream.engine import Upscaler

    image = read_image(EXAMPLES / "foreman.png")[:64, :96]
    profile = Profile(channels=3, batch=(1, 1, 2), height=(16, 64, 128), width=(16, 96, 128))
    trt_out = Upscaler("srresnet-x4", backend="tensorrt", tile=None, profile=profile, cache_dir=tmp_path).upscale(image)
    cpu_out = Upscaler("srresnet-x4", backend="cpu", tile=None).upscale(image)
    assert np.abs(trt_out.astype(int) - cpu_out.astype(int)).max() <= 1
    assert len(list(tmp_path.glob("*.engine"))) == 1 and (tmp_path / "timing.cache").is_file()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_matches_fp32_within_one_level():
    from srstream.engine import Upscaler

    image = read_image(EXAMPLES / "foreman.png")[:64, :96]
    gpu = Upscaler("srresnet-x4", backend="cuda", tile=None).upscale(image)
    cpu = Upscaler("srresnet-x4", backend="cpu", tile=None).upscale(image)
    assert np.abs(gpu.astype(int) - cpu.astype(int)).max() <= 1
