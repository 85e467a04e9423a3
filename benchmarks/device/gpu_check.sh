#!/usr/bin/env bash
# The GPU points of issue 13 in one lease of a lent H100/H200 (about 7 minutes of its time): CUDA correctness
# tests, then benchmarks/gpu_streaming.py, JSON and logs into $OUT.
#
# Prepare here (the device has torch, onnx and onnxruntime, not av), in the repository's root:
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0
# Then call the device tool's run with: command "bash benchmarks/device/gpu_check.sh", carry [".whl"],
# timeout_s 540. TensorRT-RTX (a 95 MB wheel) does not fit beside the tree in the same call: to try it, download
# tensorrt_rtx into .whl in a second call to the still-warm machine and run with TRT=1 (it then also times the
# tensorrt backend; on Hopper, 9.0, TensorRT-RTX has no build target and the run records that error).
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "no wheels in .whl: see the top of this script"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, av; print('torch', torch.__version__, 'av', av.__version__)" | tee -a "$OUT/gpu.txt"
# 1. Correctness where only a GPU can check it: fp16 and CUDA graphs against CPU fp32 (one 8-bit level), the
#    device-side YUV conversion against the CPU's.
timeout 150 python3 -m pytest -q -p no:cacheprovider -o addopts="" tests/test_tensorrt.py tests/test_gpu.py \
  2>&1 | tee "$OUT/tests.log"
# 2. Engine fps per backend, the pipeline end to end on 1000 frames of 480x270 -> 1920x1080, the encode ceiling.
extra=""
[ "${TRT:-0}" = 1 ] && extra="--tensorrt"
timeout 380 python3 benchmarks/gpu_streaming.py --out "$OUT/gpu_streaming.json" $extra 2>&1 | tee "$OUT/gpu_streaming.log"
