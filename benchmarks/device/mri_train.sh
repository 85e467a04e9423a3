#!/usr/bin/env bash
# Issue 15's GPU training in one lease of a lent H100/H200 (about 9 minutes): a longer run of `mri-thick` (thick
# slices at any ratio and profile) and a third round of `mri-x2` on the training slices that include ch2better
# (Colin27 with skull). Weights come back in $OUT. Then, in the same lease, t1_head (evaluation data: it travels to
# be measured, never trained on) with srmed's defaults on a GPU, self-supervised tuning included.
# Prepare here, in the repository's root:
#   mkdir -p .eval && cp ../shared/data/mri/eval/t1_head.nii.gz .eval/ && echo /.eval/ >> .git/info/exclude
#   echo /.whl/ >> .git/info/exclude; python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl nibabel
#   python -m medical.slices ../shared/data/mri/train/FLAIR.nii.gz ../shared/data/mri/train/inia19-t1-brain.nii.gz \
#       ../shared/data/mri/train/norm.mgz ../shared/data/mri/train/ch2better.nii.gz -o runs/mri-slices-2   # 26 MB
# Then call the device tool's run with: command "bash benchmarks/device/mri_train.sh", carry ["runs/mri-slices-2",
# ".eval", ".whl"], timeout_s 600.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
  && export PYTHONPATH=/tmp/site:$PWD
common=(--set data.workers=8 --set log.sample_every=0 --set log.checkpoint_every=1000)
# Both runs share the GPU, as two processes (each is far from filling an H200); 5 minutes, then the evaluation.
python3 -m training.train --config training/configs/mri-thick.toml "${common[@]}" --set train.minutes=5 \
  --set train.steps=40000 --set train.batch_size=32 --set train.lr=2e-4 --set out_dir='"runs/gpu-mri-thick"' \
  > "$OUT/mri-thick.log" 2>&1 &
python3 -m training.train --config training/configs/mri-x2.toml "${common[@]}" --set train.minutes=5 \
  --set train.steps=40000 --set train.batch_size=32 --set train.lr=5e-5 --set train.ema=0.999 \
  --set data.train='["runs/mri-slices-2"]' --set train.init='"training/shipped/mri-x2.safetensors"' \
  --set out_dir='"runs/gpu-mri-x2"' > "$OUT/mri-x2.log" 2>&1 &
wait
for run in mri-thick mri-x2; do
  cp runs/gpu-$run/$run.safetensors runs/gpu-$run/$run.json "$OUT/" 2>/dev/null || tail -5 "$OUT/$run.log"
done
ls -la "$OUT"
# The shipped names now load the new weights; t1_head through-plane with self-supervised tuning on the GPU.
cp "$OUT"/mri-thick.safetensors "$OUT"/mri-thick.json training/shipped/ 2>/dev/null
timeout 200 python3 benchmarks/mri_eval.py .eval/t1_head.nii.gz --in-plane mri-x2 --through-plane mri-thick \
  --acquisitions 4x4,2.5x2.5,3x2 --self-supervised 45 --out "$OUT/mri_t1_head_gpu.json" 2>&1 | tail -40
