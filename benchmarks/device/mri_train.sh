#!/usr/bin/env bash
# Issue 15's GPU training in one lease of a lent H100/H200 (about 9 minutes): a longer run of `mri-thick` (thick
# slices at any ratio and profile) and a third round of `mri-x2` on the training slices that include ch2better
# (Colin27 with skull). Weights come back in $OUT; evaluate them here with benchmarks/mri_eval.py (t1_head never
# travels: it is evaluation data).
#
# Prepare here, in the repository's root:
#   python -m medical.slices ../shared/data/mri/train/FLAIR.nii.gz ../shared/data/mri/train/inia19-t1-brain.nii.gz \
#       ../shared/data/mri/train/norm.mgz ../shared/data/mri/train/ch2better.nii.gz -o runs/mri-slices-2   # 26 MB
# Then call the device tool's run with: command "bash benchmarks/device/mri_train.sh", carry ["runs/mri-slices-2"],
# timeout_s 600.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi -L | tee "$OUT/gpu.txt"
common=(--set data.workers=8 --set log.sample_every=0 --set log.checkpoint_every=1000)
# Both runs share the GPU, as two processes (each is far from filling an H200).
python3 -m training.train --config training/configs/mri-thick.toml "${common[@]}" --set train.minutes=7.5 \
  --set train.steps=40000 --set train.batch_size=32 --set train.lr=2e-4 --set out_dir='"runs/gpu-mri-thick"' \
  > "$OUT/mri-thick.log" 2>&1 &
python3 -m training.train --config training/configs/mri-x2.toml "${common[@]}" --set train.minutes=7.5 \
  --set train.steps=40000 --set train.batch_size=32 --set train.lr=5e-5 --set train.ema=0.999 \
  --set data.train='["runs/mri-slices-2"]' --set train.init='"training/shipped/mri-x2.safetensors"' \
  --set out_dir='"runs/gpu-mri-x2"' > "$OUT/mri-x2.log" 2>&1 &
wait
for run in mri-thick mri-x2; do
  cp runs/gpu-$run/$run.safetensors runs/gpu-$run/$run.json "$OUT/" 2>/dev/null || tail -5 "$OUT/$run.log"
done
ls -la "$OUT"
