#!/usr/bin/env bash
# The flagship-v2 design sweep (issue 18): each candidate of zoo/sweep_v2_candidates.yaml trained from
# scratch with configs/sweep-v2.yaml (one recipe, one budget), then its validation PSNR on CBSD432's
# held-out `validation` split (AWGN sigma 25) and its cost (benchmarks/design_cost.py: parameters, GMACs,
# restoration speed beside FFDNet in one run). The choice is made on this table, never on a test set.
#   PATH=.venv/bin:$PATH bash zoo/sweep_v2.sh [train|validation|cost|all]   # all by default; on an idle machine
set -euo pipefail
data=../shared/data
peers=../shared/peers
candidates=zoo/sweep_v2_candidates.yaml
out=docs/flagship-v2
run() { echo "\$ $*" >&2; "$@"; }
# the candidates trained on the sweep's budget; v1 (the current flagship's design) is costed beside them and its
# validation row is the zoo's colour-v1, trained far longer (a 6,000-crop rerun of it did not fit this session)
trained="${SWEEP_TRAINED:-s2-64x3 s2-48x4 s2-64x3-deep}"
names() { echo "$trained"; }
overrides() { python -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))[sys.argv[2]]))' "$candidates" "$1"; }

train() {
  for name in $(names); do
    local run_dir=runs/sweep-v2-$name
    if [ -f "$run_dir/final/model.safetensors" ]; then echo "$run_dir is finished" >&2; continue; fi
    local flag=--overwrite; [ -f "$run_dir/checkpoints/latest" ] && flag=--resume
    run hfdae train --config configs/sweep-v2.yaml --output_dir "$run_dir" --model.overrides "$(overrides "$name")" $flag
  done
}

validation() {
  local models=()
  for name in $(names); do models+=("runs/sweep-v2-$name/final"); done
  models+=(colour-v1)
  run hfdae evaluate "${models[@]}" --data "$data/train/CBSD432" --split validation --protocol awgn --sigmas 25 \
      --no-ssim --given-sigma --baseline input --baseline "ffdnet=$peers/ffdnet_color.pth" --output "$out/sweep-validation"
}

cost() {  # on an otherwise idle machine: restoration speed is measured here
  local models=() name
  for name in $(names); do models+=("model:runs/sweep-v2-$name/final"); done
  models+=(model:colour-v1)
  { echo "\$ python benchmarks/design_cost.py --candidates $candidates"; python benchmarks/design_cost.py --candidates "$candidates"
    echo; echo "Training crops/s (the sweep's 96x96 crops, batches of 16):"; echo
    echo "\$ python benchmarks/training_speed.py --presets $(IFS=,; echo "${models[*]}") --crop 96"
    python benchmarks/training_speed.py --presets "$(IFS=,; echo "${models[*]}")" --crop 96; } > "$out/design_cost.md"
}

case "${1:-all}" in
  train) train ;;
  validation) validation ;;
  cost) cost ;;
  all) train; validation; cost ;;
  *) echo "usage: $0 [train|validation|cost|all]" >&2; exit 2 ;;
esac
