#!/usr/bin/env bash
# Trains the chapter-claims experiments of docs/reproduction.md: each run is configs/reproduction.yaml
# with one change. Resumes interrupted runs and keeps finished ones, so it can be rerun at any time.
#
#   PATH=.venv/bin:$PATH bash scripts/reproduction/train.sh [GROUP...]   # groups: core sgd blur heads colour depth saturation
#   bash scripts/reproduction/train.sh long   # not in the default set: sections 1 and 7 at 100,000 crops, for a GPU
#
# Run from the repository root with ../shared/data present, on an otherwise idle machine.
set -euo pipefail
base=configs/reproduction.yaml
run() { echo "\$ $*" >&2; "$@"; }

train() {  # train NAME [--key value overrides...]: the run runs/repro-NAME
    local run_dir=runs/repro-$1
    shift
    if [ -f "$run_dir/final/model.safetensors" ]; then
        echo "$run_dir is finished" >&2
        return
    fi
    local restart=()
    if [ -f "$run_dir/checkpoints/latest" ]; then restart=(--resume); elif [ -d "$run_dir" ]; then restart=(--overwrite); fi
    # a run that diverges is a result too (its log says where): note it and go on with the others
    if ! run hfdae train --config "$base" "${restart[@]}" --output_dir "$run_dir" "$@"; then
        echo "$run_dir FAILED (see its log.jsonl and the message above)" >&2
    fi
}

core() {  # deep with skips against no skips and shallow (Figures 18.4-18.6), all with Adam
    train skip-adam
    train noskip-adam --model.preset noskip --description "'chapter-claims experiment (short budget): noskip design, Adam'"
    train small-adam --model.preset small --description "'chapter-claims experiment (short budget): small design, Adam'"
}

sgd() {  # SGD cannot train noskip (Figure 18.9); a schedule helps SGD (18.6); momentum helps (18.8)
    train noskip-sgd --model.preset noskip --optimizer.name sgd --schedule.name step \
        --description "'chapter-claims experiment: noskip, SGD, step schedule'"
    train skip-sgd --optimizer.name sgd --schedule.name step \
        --description "'chapter-claims experiment: skip, SGD, step schedule'"
    train skip-sgd-constant --optimizer.name sgd --schedule.name constant --schedule.learning_rate 2e-3 \
        --description "'chapter-claims experiment: skip, SGD, constant rate 2e-3'"
    train skip-momentum --optimizer.name momentum --schedule.name step \
        --description "'chapter-claims experiment: skip, SGD with momentum 0.9, step schedule'"
}

blur() {  # exercise 18.6: training without blur hurts deblurring
    train skip-noblur --data.degradations '[gaussian, salt_pepper, knockout]' \
        --description "'chapter-claims experiment: skip, trained without blur'"
}

heads() {  # section 18.2's output heads, and the loss weights (exercise 18.6): small design, 8,000 crops
    local short=(--model.preset small --max_images 8000 --validate_every_images 2000 --checkpoint_every_images 2000)
    train small-linear "${short[@]}" --description "'output head: linear, no penalty'"
    train small-linear-penalty "${short[@]}" --model.overrides.out_of_range_weight 100 \
        --description "'output head: linear + out-of-range penalty'"
    train small-sigmoid "${short[@]}" --model.overrides.output_head sigmoid --description "'output head: sigmoid'"
    train small-tanh "${short[@]}" --model.overrides.output_head tanh --description "'output head: tanh'"
    train small-scaled-tanh "${short[@]}" --model.overrides.output_head scaled_tanh \
        --model.overrides.out_of_range_weight 100 --description "'output head: scaled tanh + out-of-range penalty'"
    train small-mse-only "${short[@]}" --model.overrides.l1_weight 0 --description "'loss: 100 mean(R^2) only'"
    train small-l1-only "${short[@]}" --model.overrides.mse_weight 0 --description "'loss: 30 mean(|R|) only'"
}

colour() {  # LAB (the network restores L; A and B are smoothed) against RGB
    train skip-lab --model.overrides.colour_space lab --description "'chapter-claims experiment: skip, LAB'"
}

depth() {  # does a deeper model help: four residual blocks at each coarse level instead of two
    train skip-deep --model.overrides.blocks_per_level '[1, 4, 4, 4, 4]' \
        --description "'chapter-claims experiment: skip with blocks [1, 4, 4, 4, 4]'"
}

saturation() {  # the flat-bright failure (zoo/colour's card): does bilinear upsampling remove the dotted grid?
    train skip-resize --model.overrides.upsample resize \
        --description "'chapter-claims experiment: skip with bilinear upsampling + convolution'"
}

long() {  # the budget-dependent verdicts (sections 1 and 7) again at 100,000 crops, six times the budget:
    # batches of 64 and 12 DataLoader workers cutting 8 crops per decoded image, for one GPU (a few minutes
    # per run there; about an hour per deep run on the project's CPU, where num_workers 1 suits better)
    local longer=(--max_images 100000 --batch_size 64 --data.num_workers 12 --data.crops_per_image 8
                  --data.shuffle_buffer 256 --log_every_images 3200 --validate_every_images 25000
                  --checkpoint_every_images 25000)
    train long-skip-adam "${longer[@]}" --description "'chapter-claims experiment (100,000 crops): skip design, Adam'"
    train long-small-adam "${longer[@]}" --model.preset small \
        --description "'chapter-claims experiment (100,000 crops): small design, Adam'"
    train long-noskip-adam "${longer[@]}" --model.preset noskip \
        --description "'chapter-claims experiment (100,000 crops): noskip design, Adam'"
    train long-skip-noblur "${longer[@]}" --data.degradations '[gaussian, salt_pepper, knockout]' \
        --description "'chapter-claims experiment (100,000 crops): skip, trained without blur'"
}

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(core sgd blur heads colour depth saturation)
for group in "${groups[@]}"; do "$group"; done
