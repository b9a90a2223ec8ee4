#!/usr/bin/env bash
# The flagship-v2 design sweep (issue 18): each candidate trained from scratch with configs/sweep-v2.yaml
# (one recipe, one budget), then validation PSNR on CBSD432's held-out `validation` split (AWGN sigma 25,
# blind and with the true sigma), parameters, GMACs and restoration speed beside FFDNet in one run.
#   PATH=.venv/bin:$PATH bash zoo/sweep_v2.sh [train|evaluate|report]   # all three by default
# The choice is made on this table (docs/flagship-v2/sweep.md), never on a test set.
set -euo pipefail
data=../shared/data
peers=../shared/peers
run() { echo "\$ $*" >&2; "$@"; }

# name -> model.overrides (all: skip connections, resize upsampling, residual output)
declare -A candidates=(
  [v1]="{widths: [32, 64, 128, 256], blocks_per_level: [1, 1, 1, 1], upsample: resize, predict_residual: true}"
  [s2-64x3]="{space_to_depth_factor: 2, noise_level_input: true, widths: [64, 128, 256], blocks_per_level: [1, 1, 1], upsample: resize, predict_residual: true}"
  [s2-48x4]="{space_to_depth_factor: 2, noise_level_input: true, widths: [48, 96, 192, 384], blocks_per_level: [1, 1, 1, 2], upsample: resize, predict_residual: true}"
  [s2-64x3-deep]="{space_to_depth_factor: 2, noise_level_input: true, widths: [64, 96, 192], blocks_per_level: [1, 2, 3], upsample: resize, predict_residual: true}"
)
order=(s2-64x3 s2-48x4 v1 s2-64x3-deep)

train() {
  for name in "${order[@]}"; do
    local run_dir=runs/sweep-v2-$name
    if [ -f "$run_dir/final/model.safetensors" ]; then echo "$run_dir is finished" >&2; continue; fi
    local flag=--overwrite; [ -f "$run_dir/checkpoints/latest" ] && flag=--resume
    run hfdae train --config configs/sweep-v2.yaml --output_dir "$run_dir" --model.overrides "${candidates[$name]}" $flag
  done
}

evaluate() {
  local models=()
  for name in "${order[@]}"; do models+=("runs/sweep-v2-$name/final"); done
  run hfdae evaluate "${models[@]}" --data "$data/train/CBSD432" --split validation --protocol awgn --sigmas 25 \
      --no-ssim --baseline input --baseline "ffdnet=$peers/ffdnet_color.pth" --output runs/sweep-v2-eval/blind
  run python zoo/sweep_v2_report.py "${order[@]}"
}

case "${1:-all}" in
  train) train ;;
  evaluate) evaluate ;;
  all) train; evaluate ;;
  *) echo "usage: $0 [train|evaluate|all]" >&2; exit 2 ;;
esac
