#!/usr/bin/env bash
# Trains, evaluates and packages the zoo's checkpoints: every file in zoo/NAME/ comes from here.
#
#   PATH=.venv/bin:$PATH bash zoo/train.sh colour     # the colour flagship (about 2 h on 2 CPU cores)
#   PATH=.venv/bin:$PATH bash zoo/train.sh inpaint    # fine-tuned from it, with the from-scratch control
#
# Run from the repository root with ../shared/data and ../shared/peers present, on an otherwise idle
# machine (a second CPU-heavy process slows torch's threads far more than it takes). Training resumes
# from runs/NAME/checkpoints when it was interrupted. Models are chosen on the hash `validation` split of
# the training images; the test sets are used once per final model.
set -euo pipefail
data=../shared/data
peers=../shared/peers
dncnn="dncnn=$peers/dncnn_color_blind.pth"
ffdnet="ffdnet=$peers/ffdnet_color.pth"
run() { echo "\$ $*" >&2; "$@"; }

resume_flag() {  # how to (re)start the run in RUN_DIR: continue its last checkpoint, or start afresh
    if [ -f "$1/checkpoints/latest" ]; then echo --resume; elif [ -d "$1" ]; then echo --overwrite; fi
}

train() {  # train CONFIG RUN_DIR: start, or resume an interrupted run, or keep a finished one
    local config=$1 run_dir=$2
    if [ -f "$run_dir/final/model.safetensors" ]; then
        echo "$run_dir is finished" >&2
    else
        run hfdae train --config "$config" $(resume_flag "$run_dir")
    fi
}

package() {  # package NAME RUN_DIR EVALUATION...: the Hub-ready folder zoo/NAME (without code: pushes add it)
    local name=$1 run_dir=$2
    shift 2
    local evaluations=()
    for evaluation in "$@"; do evaluations+=(--evaluation "$evaluation"); done
    # zoo/NAME.notes.md (the commands, written by hand beside the numbers they explain) becomes the
    # card's "Notes and reproduction" section
    run hfdae push "$run_dir" --repo-id "hfdae/hfdae-$name" --dry-run "zoo/$name" --no-code --overwrite \
        --notes "zoo/$name.notes.md" "${evaluations[@]}"
}

colour() {
    train configs/zoo-colour.yaml runs/zoo-colour
    local out=runs/zoo-colour/eval
    # the chapter's protocol (five outputs) and the standard AWGN protocol, with the peers in the same run
    run hfdae evaluate runs/zoo-colour/best --data "$data/test/CBSD68" --protocol seed \
        --baseline input --baseline "$dncnn" --output "$out/cbsd68-seed"
    run hfdae evaluate runs/zoo-colour/best --data "$data/test/CBSD68" --protocol awgn --no-ssim \
        --baseline input --baseline "$dncnn" --baseline "$ffdnet" --output "$out/cbsd68-awgn"
    # CBM3D takes about 14 s per image and sigma on this CPU: sigma 25 on the first 10 images, beside the rest
    run hfdae evaluate runs/zoo-colour/best --data "$data/test/CBSD68" --protocol awgn --sigmas 25 --limit 10 \
        --no-ssim --baseline bm3d --baseline "$dncnn" --output "$out/cbsd68-awgn25-bm3d10"
    package colour runs/zoo-colour "$out/cbsd68-seed" "$out/cbsd68-awgn" "$out/cbsd68-awgn25-bm3d10"
    # the embedded default is the colour flagship; zoo/colour points at it instead of a second copy
    run cp zoo/colour/config.json zoo/colour/model.safetensors hfdae/default_model/
    run ln -sf ../../hfdae/default_model/model.safetensors zoo/colour/model.safetensors
}

inpaint() {
    local images=4000
    # from the zoo name, so the lineage names the published parent (colour() installed it as the default)
    [ -f runs/zoo-inpaint/final/model.safetensors ] || run hfdae finetune --from colour --task inpaint \
        --data "$data/train/CBSD432" --output runs/zoo-inpaint --lr 1e-4 --max-images $images \
        --data.crop_size 96 --data.num_workers 1 --batch_size 16 $(resume_flag runs/zoo-inpaint)
    train configs/zoo-inpaint-scratch.yaml runs/zoo-inpaint-scratch   # the same architecture, from scratch
    local out=docs/finetuning
    # held-out images: the validation split of CBSD432 (never trained on), the inpainting protocol
    run hfdae evaluate runs/zoo-colour/best runs/zoo-inpaint/best runs/zoo-inpaint-scratch/best \
        --data "$data/train/CBSD432" --split validation --protocol inpaint --baseline input \
        --output "$out/inpaint-validation"
    run hfdae curve runs/zoo-inpaint --overlay "from scratch=runs/zoo-inpaint-scratch" \
        --output "$out/learning_curves.png"
    run hfdae evaluate runs/zoo-inpaint/best --data "$data/test/CBSD68" --protocol inpaint --baseline input \
        --output runs/zoo-inpaint/eval/cbsd68-inpaint
    package inpaint runs/zoo-inpaint runs/zoo-inpaint/eval/cbsd68-inpaint
}

for target in "$@"; do "$target"; done
