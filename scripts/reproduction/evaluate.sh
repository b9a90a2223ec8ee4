#!/usr/bin/env bash
# Evaluates the runs of scripts/reproduction/train.sh on held-out images (the `validation` hash split of
# CBSD432: never trained on; the test sets are kept for the zoo's final models) and draws the figures of
# docs/reproduction.md. Then `python scripts/reproduction/report.py` prints its tables.
#
#   PATH=.venv/bin:$PATH bash scripts/reproduction/evaluate.sh
set -euo pipefail
out=docs/reproduction
held_out=(--data ../shared/data/train/CBSD432 --split validation)
run() { echo "\$ $*" >&2; "$@"; }
models() {  # models CHECKPOINT NAME...: runs/repro-NAME/CHECKPOINT of the named runs; a run without one
    local checkpoint=$1  # (one that diverged, or did not finish) is left out, with a note
    shift
    for name in "$@"; do
        if [ -f "runs/repro-$name/$checkpoint/model.safetensors" ]; then echo "runs/repro-$name/$checkpoint"
        else echo "no runs/repro-$name/$checkpoint: left out" >&2; fi
    done
}
final() { models final "$@"; }

# every output: the chapter's five-output protocol, with a detail panel and the PSNR heatmap
run hfdae evaluate $(final skip-adam noskip-adam small-adam) "${held_out[@]}" --protocol seed --baseline input \
    --output "$out/core"
run hfdae evaluate $(final skip-adam skip-sgd skip-sgd-constant skip-momentum noskip-sgd noskip-adam) \
    "${held_out[@]}" --protocol seed --no-ssim --output "$out/optimisers"
run hfdae evaluate $(final skip-adam skip-noblur) "${held_out[@]}" --protocol seed --no-ssim --output "$out/blur-seed"
run hfdae evaluate $(final skip-adam skip-noblur) "${held_out[@]}" --protocol deblur --baseline input \
    --output "$out/blur-deblur"
run hfdae evaluate $(final small-linear small-linear-penalty small-sigmoid small-tanh small-scaled-tanh \
    small-mse-only small-l1-only) "${held_out[@]}" --protocol seed --no-ssim --output "$out/heads"
run hfdae evaluate $(final skip-adam skip-lab skip-deep skip-resize) "${held_out[@]}" --protocol seed --no-ssim \
    --output "$out/variants"
# the budget-dependent verdicts at 100,000 crops (train.sh long, on a GPU) beside the 16,000-crop runs; their
# best/ (the GPU run sent back only best/; validation rose at every check, so it is the model at 100,000 crops)
long_runs=($(models best long-skip-adam long-small-adam long-noskip-adam long-skip-noblur))
run hfdae evaluate "${long_runs[@]}" $(final skip-adam small-adam) "${held_out[@]}" --protocol seed --no-ssim \
    --output "$out/long"
# does the zoo's flagship deblur (trained with blur for 1 M crops), where the 16,000-crop runs did not?
run hfdae evaluate runs/zoo-colour-stage4/best runs/zoo-colour-stage3/best "${long_runs[0]}" $(final skip-adam) \
    "${held_out[@]}" --protocol deblur --baseline input --no-ssim --output "$out/blur-flagship"

# learning curves (training loss against images seen, 50-record moving average), one per claim
curve() { local main=$1 output=$2; shift 2; run hfdae curve "runs/repro-$main" --output "$out/$output.png" "$@"; }
curve skip-adam curve-designs --overlay "noskip=runs/repro-noskip-adam" --overlay "small=runs/repro-small-adam"
curve noskip-sgd curve-noskip-sgd-vs-adam --overlay "noskip Adam=runs/repro-noskip-adam"
curve skip-sgd curve-skip-schedule --overlay "constant rate=runs/repro-skip-sgd-constant"
[ ! -f runs/repro-long-skip-adam/log.jsonl ] || curve long-skip-adam curve-designs-long \
    --overlay "small=runs/repro-long-small-adam"
curve skip-momentum curve-skip-momentum --overlay "no momentum=runs/repro-skip-sgd" \
    --overlay "Adam=runs/repro-skip-adam"
run python scripts/reproduction/clamp_gradient.py | tee "$out/clamp_gradient.md"
run python scripts/reproduction/sharpness.py | tee "$out/sharpness.md"
# the flat-bright failure: transposed-convolution upsampling against bilinear resize + convolution
cbsd68=../shared/data/test/CBSD68
run python benchmarks/saturation_check.py --models "$(final skip-adam skip-resize | paste -sd,)" \
    --images "$cbsd68/253055.png,$cbsd68/101087.png" | tee "$out/saturation.md"
