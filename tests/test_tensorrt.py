"""TensorRT: cache keys, profiles and ahead-of-time engine builds with TensorRT-RTX on any machine (no GPU needed);
running engines and fp16 parity where a GPU is."""
import importlib.util

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from srstream.backends import tensorrt_available
from srstream.backends.tensorrt_build import (
    Profile,
    TensorRTError,
    build_engine,
    cached_engine,
    engine_key,
    find_runtime,
    rtx_target,
)
from srstream.cli import main
from srstream.export import export_onnx, model_hash
from srstream.images import read_image
from srstream.models import load_model

from assets import EXAMPLES

HAS_TRT = tensorrt_available()
# In the test extra, so CI always has it; the GPU machine may not (its wheel is carried separately).
needs_rtx = pytest.mark.skipif(importlib.util.find_spec("tensorrt_rtx") is None,
                               reason="needs tensorrt-rtx (pip install 'srstream[tensorrt]')")
SMALL = Profile(channels=3, batch=(1, 1, 2), height=(16, 64, 128), width=(16, 96, 128))


def test_engine_key_changes_with_model_target_runtime_version_and_profile():
    spec = load_model("fast-x4")
    base = dict(model_sha=model_hash(spec), target="NVIDIA H100 80GB HBM3", runtime="tensorrt",
                version="11.0.0", profile=Profile(channels=3))
    key = engine_key(**base)
    assert key == engine_key(**base)
    assert key != engine_key(**{**base, "model_sha": model_hash(load_model("srresnet-x4"))})
    assert key != engine_key(**{**base, "target": "NVIDIA A100"})
    assert key != engine_key(**{**base, "target": rtx_target(("8.6",))})
    assert key != engine_key(**{**base, "runtime": "tensorrt-rtx"})
    assert key != engine_key(**{**base, "version": "11.1.0"})
    assert key != engine_key(**{**base, "profile": Profile(channels=3, batch=(1, 8, 16))})


@needs_rtx
def test_tensorrt_rtx_builds_an_engine_without_a_gpu_and_the_cache_is_reused_and_rebuilt(tmp_path):
    runtime = find_runtime("tensorrt-rtx")
    spec = load_model("fast-x4")
    path, built = cached_engine(spec, SMALL, runtime, rtx_target(None), cache_dir=tmp_path)
    assert built and path.stat().st_size > 100_000 and path.name.startswith("fast-x4-tensorrt-rtx-")
    stamp = path.stat().st_mtime_ns
    again, built_again = cached_engine(spec, SMALL, runtime, rtx_target(None), cache_dir=tmp_path)
    assert again == path and not built_again and path.stat().st_mtime_ns == stamp
    with torch.no_grad():
        next(spec.module.parameters()).view(-1)[0] += 1e-3  # a retrained model: a new engine
    changed, built_changed = cached_engine(spec, SMALL, runtime, rtx_target(None), cache_dir=tmp_path)
    assert built_changed and changed != path
    assert sorted(p.name for p in tmp_path.glob("*.engine")) == sorted([path.name, changed.name])
    assert not list(tmp_path.glob(".*"))  # no temporary ONNX or partial engine left behind


@needs_rtx
def test_an_onnx_the_builder_rejects_is_a_one_line_error_naming_the_op(tmp_path, capsys):
    graph = helper.make_graph([helper.make_node("Unique", ["lr"], ["sr"], name="dedupe")], "g",
                              [helper.make_tensor_value_info("lr", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("sr", TensorProto.FLOAT, None)])
    path = tmp_path / "unique.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    with pytest.raises(TensorRTError, match="op Unique \\(node dedupe\\) is not supported"):
        build_engine(path, SMALL, find_runtime("tensorrt-rtx"))
    assert main(["export", "-m", str(path), "-f", "tensorrt", "-o", str(tmp_path / "u.engine")]) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "op Unique" in captured.err and not (tmp_path / "u.engine").exists()


@needs_rtx
def test_export_cli_writes_an_engine_for_the_asked_profile_and_targets(tmp_path, capsys):
    out = tmp_path / "fast.engine"
    assert main(["export", "-m", "fast-x4", "-f", "tensorrt", "-o", str(out), "--batch", "1,1,2",
                 "--height", "16,64,128", "--width", "16,96,128", "--target", "8.6,8.9"]) == 0
    assert out.stat().st_size > 100_000
    err = capsys.readouterr().err
    assert "tensorrt-rtx" in err and "(1, 3, 16, 16), (1, 3, 64, 96), (2, 3, 128, 128)" in err and "8.6,8.9" in err
    assert main(["export", "-m", "fast-x4", "-f", "tensorrt", "-o", str(out)]) == 1  # exists: needs -y
    assert main(["export", "-m", "fast-x4", "-f", "tensorrt", "-o", str(tmp_path / "h.engine"),
                 "--target", "9.0"]) == 1
    assert "cannot target compute capability 9.0" in capsys.readouterr().err


def test_an_engine_from_a_grey_onnx_takes_its_channels_from_the_graph(tmp_path, capsys):
    grey = export_onnx(load_model("mri-x2"), tmp_path / "mri-x2-fp16.onnx", half=True)
    out = tmp_path / "mri.engine"
    assert main(["export", "-m", str(grey), "-f", "tensorrt", "-o", str(out), "--batch", "1",
                 "--height", "16,64,128", "--width", "16,64,128", "--target", "8.6"]) == 0
    assert out.stat().st_size > 10_000 and "(1, 1, 16, 16)" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_text("not a model")
    assert main(["export", "-m", str(tmp_path / "junk.onnx"), "-f", "tensorrt", "-o", str(tmp_path / "j.engine")]) == 1
    assert "junk.onnx: not a readable ONNX model" in capsys.readouterr().err


def test_exported_onnx_runs_in_onnxruntime_within_45_db_of_the_engine(tmp_path):
    import onnxruntime as ort

    from srstream.engine import Upscaler

    out = tmp_path / "srresnet-x4-fp16.onnx"
    assert main(["export", "-m", "srresnet-x4", "--precision", "fp16", "-o", str(out), "-q"]) == 0
    image = read_image(EXAMPLES / "foreman.png")[:72, :88]
    x = image.transpose(2, 0, 1)[None].astype(np.float32) / 255
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    theirs = (np.clip(session.run(["sr"], {"lr": x})[0][0].transpose(1, 2, 0), 0, 1) * 255).round()
    ours = Upscaler("srresnet-x4", backend="cpu", precision="fp32").upscale(image).astype(np.float64)
    assert theirs.shape == ours.shape == (288, 352, 3)
    psnr = 10 * np.log10(255 ** 2 / np.mean((theirs - ours) ** 2))
    assert psnr >= 45, psnr


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


@pytest.mark.skipif(not HAS_TRT, reason="needs a CUDA GPU that TensorRT (or TensorRT-RTX) runs on")
def test_tensorrt_fp16_matches_fp32_within_one_level(tmp_path):
    from srstream.engine import Upscaler

    image = read_image(EXAMPLES / "foreman.png")[:64, :96]
    profile = Profile(channels=3, batch=(1, 1, 2), height=(16, 64, 128), width=(16, 96, 128))
    trt_out = Upscaler("srresnet-x4", backend="tensorrt", tile=None, profile=profile, cache_dir=tmp_path).upscale(image)
    cpu_out = Upscaler("srresnet-x4", backend="cpu", tile=None, precision="fp32").upscale(image)
    assert np.abs(trt_out.astype(int) - cpu_out.astype(int)).max() <= 1
    assert len(list(tmp_path.glob("*.engine"))) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_matches_fp32_within_one_level():
    from srstream.engine import Upscaler

    image = read_image(EXAMPLES / "foreman.png")[:64, :96]
    gpu = Upscaler("srresnet-x4", backend="cuda", tile=None).upscale(image)
    cpu = Upscaler("srresnet-x4", backend="cpu", tile=None, precision="fp32").upscale(image)
    assert np.abs(gpu.astype(int) - cpu.astype(int)).max() <= 1
