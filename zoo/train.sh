#!/usr/bin/env bash
# Trains, evaluates and packages the zoo's checkpoints: every file in zoo/NAME/ comes from here.
#
#   PATH=.venv/bin:$PATH bash zoo/train.sh colour     # the colour flagship (stages 1-3 about 1.5 to 2 h each here; 4 on a GPU)
#   PATH=.venv/bin:$PATH bash zoo/train.sh inpaint    # fine-tuned from colour-v1 with the mask as an input
#   PATH=.venv/bin:$PATH bash zoo/train.sh designs    # small, noskip, skip: the chapter's three designs
#   PATH=.venv/bin:$PATH bash zoo/train.sh gray       # colour-v1 converted to gray, trained for Gaussian noise (three stages)
#   PATH=.venv/bin:$PATH bash zoo/train.sh gray_v1    # the first gray flagship (Train400, two stages)
#   PATH=.venv/bin:$PATH bash zoo/train.sh deblur     # task models fine-tuned from colour-v1 (about 40 min each
#   PATH=.venv/bin:$PATH bash zoo/train.sh photo      #   on an idle 2-core CPU with bf16), evaluated and packaged
#   PATH=.venv/bin:$PATH bash zoo/train.sh colour_v2  # the v2 design sweep, then the chosen design
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

best_of() {  # best_of RESULTS_JSON CONDITION [METHOD...]: the method (of all, by default) with the best mean PSNR
    python -c 'import json, sys
methods = json.load(open(sys.argv[1]))["methods"]
print(max(sys.argv[3:] or methods, key=lambda method: methods[method]["results"][sys.argv[2]]["psnr"]["mean"]))' "$@"
}

best_source_of() {  # best_source_of RESULTS_JSON CONDITION SOURCE_PREFIX: the source of the best row whose source starts so
    python -c 'import json, sys
methods = json.load(open(sys.argv[1]))["methods"]
rows = [row for row in methods.values() if row.get("source", "").startswith(sys.argv[3])]
print(max(rows, key=lambda row: row["results"][sys.argv[2]]["psnr"]["mean"])["source"])' "$@"
}

package() {  # package NAME RUN_DIR EVALUATION...: the Hub-ready folder zoo/NAME (without code: pushes add it)
    local name=$1 run_dir=$2
    shift 2
    local evaluations=()
    for evaluation in "$@"; do evaluations+=(--evaluation "$evaluation"); done
    # where one evaluation holds several of our models, name this model's row
    [ -z "${MODEL_METHOD:-}" ] || evaluations+=(--model-method "$MODEL_METHOD")
    # zoo/NAME.notes.md, or $NOTES where models share one (the commands, written by hand beside the
    # numbers they explain), becomes the card's "Notes and reproduction" section
    run hfdae push "$run_dir" --repo-id "hfdae/hfdae-$name" --dry-run "zoo/$name" --no-code --overwrite \
        --notes "${NOTES:-zoo/$name.notes.md}" "${evaluations[@]}"
}

colour() {
    # stage 1: the wide skip U-Net with transposed upsampling; stage 2: converted to resize upsampling
    # (the cure of the flat-bright grid) and trained on with more weight on Gaussian noise; stage 3: trained
    # on from stage 2's best with still more weight on Gaussian noise and a lower learning rate; stage 4:
    # stage 3's best on one GPU, 128x128 crops in batches of 64, sized to a time budget by
    # zoo/fit_to_budget.py (on a GPU, rerun it with: python zoo/fit_to_budget.py configs/zoo-colour-stage4.yaml
    # --seconds 420; here `train` runs the committed config as it is: over a day on this CPU, estimated)
    train configs/zoo-colour.yaml runs/zoo-colour
    train configs/zoo-colour-resize.yaml runs/zoo-colour-resize
    train configs/zoo-colour-stage3.yaml runs/zoo-colour-stage3
    train configs/zoo-colour-stage4.yaml runs/zoo-colour-stage4
    local out=runs/zoo-colour-stage4/eval
    local models=(runs/zoo-colour-stage4/best runs/zoo-colour-stage3/best runs/zoo-colour-resize/best runs/zoo-colour/best)
    # which stage ships is chosen here, on held-out training images (the hash validation split of CBSD432),
    # never on the test sets
    run hfdae evaluate "${models[@]}" --data "$data/train/CBSD432" --split validation --protocol awgn \
        --sigmas 25 --no-ssim --output "$out/validation-awgn25"
    # the stage that ships: the best at sigma 25 (the quality bar's condition) on the validation split
    local flagship
    flagship=$(best_of "$out/validation-awgn25/results.json" sigma25)
    echo "the colour flagship is $flagship (best validation PSNR at sigma 25)" >&2
    # the chapter's protocol (five outputs) and the standard AWGN protocol, with the peers and the earlier
    # stages in the same run
    run hfdae evaluate "${models[@]}" --data "$data/test/CBSD68" --protocol seed \
        --baseline input --baseline "$dncnn" --output "$out/cbsd68-seed"
    run hfdae evaluate "${models[@]}" --data "$data/test/CBSD68" --protocol awgn --no-ssim \
        --baseline input --baseline "$dncnn" --baseline "$ffdnet" --output "$out/cbsd68-awgn"
    # CBM3D takes about 14 s per image and sigma on this CPU: sigma 25 on the first 10 images, beside the rest
    run hfdae evaluate "${models[@]}" --data "$data/test/CBSD68" --protocol awgn --sigmas 25 --limit 10 \
        --no-ssim --baseline bm3d --baseline "$dncnn" --output "$out/cbsd68-awgn25-bm3d10"
    MODEL_METHOD=$flagship package colour "${flagship%/best}" \
        "$out/cbsd68-seed" "$out/cbsd68-awgn" "$out/cbsd68-awgn25-bm3d10"
    # the embedded default is the colour flagship; zoo/colour points at it instead of a second copy
    run cp zoo/colour/config.json zoo/colour/model.safetensors hfdae/default_model/
    run ln -sf ../../hfdae/default_model/model.safetensors zoo/colour/model.safetensors
}

inpaint_v1() {  # the first inpainting fine-tune and its from-scratch control (docs/finetuning.md)
    local tuning=(--task inpaint --data "$data/train/CBSD432" --lr 1e-4 --max-images 4000 --data.crop_size 96
                  --data.num_workers 1 --batch_size 16)
    # two parents: the flagship's stage 3 (runs/zoo-inpaint was fine-tuned from it when it was the default,
    # as `--from colour`; the weights are the same file) and stage 4 (the default now, by its zoo name)
    [ -f runs/zoo-inpaint/final/model.safetensors ] || run hfdae finetune --from runs/zoo-colour-stage3/best \
        --output runs/zoo-inpaint "${tuning[@]}" $(resume_flag runs/zoo-inpaint)
    [ -f runs/zoo-inpaint-stage4/final/model.safetensors ] || run hfdae finetune --from colour \
        --output runs/zoo-inpaint-stage4 "${tuning[@]}" $(resume_flag runs/zoo-inpaint-stage4)
    train configs/zoo-inpaint-scratch.yaml runs/zoo-inpaint-scratch   # the same architecture, from scratch
    local out=docs/finetuning
    # held-out images: the validation split of CBSD432 (never trained on), the inpainting protocol
    run hfdae evaluate runs/zoo-colour-stage3/best colour runs/zoo-inpaint/best runs/zoo-inpaint-stage4/best \
        runs/zoo-inpaint-scratch/best --data "$data/train/CBSD432" --split validation --protocol inpaint \
        --baseline input --output "$out/inpaint-validation"
    # the fine-tune that ships: the better of the two on the validation split
    local shipped
    shipped=$(best_of "$out/inpaint-validation/results.json" inpaint runs/zoo-inpaint/best runs/zoo-inpaint-stage4/best)
    shipped=${shipped%/best}
    echo "the zoo's inpaint model is $shipped (best validation PSNR)" >&2
    local pairs=(runs/zoo-inpaint/best=runs/zoo-inpaint-scratch/best runs/zoo-inpaint-stage4/best=runs/zoo-inpaint-scratch/best
                 runs/zoo-inpaint-stage4/best=runs/zoo-inpaint/best)
    { echo "\$ python scripts/finetuning/paired.py $out/inpaint-validation/results.json ${pairs[*]}"; echo
      python scripts/finetuning/paired.py "$out/inpaint-validation/results.json" "${pairs[@]}"; } > "$out/paired.md"
    run hfdae curve "$shipped" --overlay "from scratch=runs/zoo-inpaint-scratch" --output "$out/learning_curves.png"
    { echo "\$ python scripts/finetuning/losses.py runs/zoo-inpaint runs/zoo-inpaint-scratch"
      python scripts/finetuning/losses.py runs/zoo-inpaint runs/zoo-inpaint-scratch
      echo; echo "\$ python scripts/finetuning/losses.py runs/zoo-inpaint-stage4 runs/zoo-inpaint-scratch"
      python scripts/finetuning/losses.py runs/zoo-inpaint-stage4 runs/zoo-inpaint-scratch; } > "$out/losses.md"
    run hfdae evaluate "$shipped/best" --data "$data/test/CBSD68" --protocol inpaint --baseline input \
        --output "$shipped/eval/cbsd68-inpaint"
    package inpaint "$shipped" "$shipped/eval/cbsd68-inpaint"
}

inpaint() {
    # the first colour flagship fine-tuned to fill holes given their mask, the output composited (only the holes
    # are the model's): stage 1 on 96x96 crops (configs/zoo-inpaint.yaml), stage 2 from it on 128x128 crops with a
    # warm restart (configs/zoo-inpaint-stage2.yaml, which starts from stage 1's best, runs/zoo-inpaint-v2/best)
    train configs/zoo-inpaint.yaml runs/zoo-inpaint-v2
    train configs/zoo-inpaint-stage2.yaml runs/zoo-inpaint-stage2
    local out=runs/zoo-inpaint-stage2/eval
    local stages=(runs/zoo-inpaint-stage2/best runs/zoo-inpaint-v2/best)
    # which stage ships: the best on held-out images (biharmonic inpainting beside them), never the test set
    run hfdae evaluate "${stages[@]}" --data "$data/train/CBSD432" --split validation \
        --protocol inpaint --no-ssim --output "$out/validation-inpaint"
    local shipped
    shipped=$(best_of "$out/validation-inpaint/results.json" inpaint "${stages[@]}")
    echo "the zoo's inpaint model is $shipped (best validation PSNR)" >&2
    run hfdae evaluate "${stages[@]}" --data "$data/test/CBSD68" --protocol inpaint --output "$out/cbsd68-inpaint"
    MODEL_METHOD=$shipped package inpaint "${shipped%/best}" "$out/cbsd68-inpaint"
}

designs() {
    # the chapter's small, noskip and skip designs with the same recipe and image budget (16,000 crops of
    # 96x96, Adam): the core runs of docs/reproduction.md, evaluated together on the test set
    run bash scripts/reproduction/train.sh core
    local models=(runs/repro-skip-adam/best runs/repro-noskip-adam/best runs/repro-small-adam/best)
    local out=runs/repro-designs-eval
    run hfdae evaluate "${models[@]}" --data "$data/test/CBSD68" --protocol seed --baseline input \
        --output "$out/cbsd68-seed"
    # CDnCNN-B over all of CBSD68 is in zoo/colour's tables (the same deterministic protocol); here it runs
    # beside CBM3D on the first 10 images
    run hfdae evaluate "${models[@]}" --data "$data/test/CBSD68" --protocol awgn --no-ssim \
        --baseline input --output "$out/cbsd68-awgn"
    run hfdae evaluate "${models[@]}" --data "$data/test/CBSD68" --protocol awgn --sigmas 25 --limit 10 \
        --no-ssim --baseline bm3d --baseline "$dncnn" --output "$out/cbsd68-awgn25-bm3d10"
    for name in small noskip skip; do
        NOTES=zoo/designs.notes.md MODEL_METHOD=runs/repro-$name-adam/best package "$name" "runs/repro-$name-adam" \
            "$out/cbsd68-seed" "$out/cbsd68-awgn" "$out/cbsd68-awgn25-bm3d10"
    done
}

gray_v1() {  # the first gray flagship (zoo `gray-v1`; the zoo's `gray` until 2026-12-03)
    # stage 1: the colour flagship's first-stage design on one channel; stage 2: converted to resize
    # upsampling and trained on with more weight on Gaussian noise (the colour flagship's stage-2 recipe)
    train configs/zoo-gray.yaml runs/zoo-gray
    train configs/zoo-gray-stage2.yaml runs/zoo-gray-stage2
    local out=runs/zoo-gray-stage2/eval dncnn_gray="dncnn=$peers/dncnn_gray_blind.pth"
    local models=(runs/zoo-gray-stage2/best runs/zoo-gray/best)
    # which stage ships: the best at sigma 25 on Train400's held-out validation split, never a test set
    run hfdae evaluate "${models[@]}" --data "$data/train/Train400" --split validation --protocol awgn \
        --sigmas 25 --no-ssim --output "$out/validation-awgn25"
    local shipped
    shipped=$(best_of "$out/validation-awgn25/results.json" sigma25)
    echo "the gray flagship is $shipped (best validation PSNR at sigma 25)" >&2
    run hfdae evaluate "${models[@]}" --data "$data/test/BSD68" --protocol seed --baseline input \
        --output "$out/bsd68-seed"
    run hfdae evaluate "${models[@]}" --data "$data/test/BSD68" --protocol awgn --no-ssim \
        --baseline input --baseline "$dncnn_gray" --output "$out/bsd68-awgn"
    run hfdae evaluate "${models[@]}" --data "$data/test/Set12" --protocol awgn --no-ssim \
        --baseline input --baseline bm3d --baseline "$dncnn_gray" --output "$out/set12-awgn"
    MODEL_METHOD=$shipped package gray-v1 "${shipped%/best}" "$out/bsd68-seed" "$out/bsd68-awgn" "$out/set12-awgn"
}

gray() {
    # the first colour flagship converted to one channel and trained for blind Gaussian noise, sigma <= 55
    # (configs/zoo-gray-denoise.yaml), trained on with a warm restart (configs/zoo-gray-denoise-stage2.yaml), then
    # with two more blocks at full resolution (configs/zoo-gray-denoise-stage3.yaml), against DnCNN-B (gray,
    # blind) on BSD68 and Set12
    train configs/zoo-gray-denoise.yaml runs/zoo-gray-denoise
    train configs/zoo-gray-denoise-stage2.yaml runs/zoo-gray-denoise-stage2
    train configs/zoo-gray-denoise-stage3.yaml runs/zoo-gray-denoise-stage3
    local out=runs/zoo-gray-denoise-stage3/eval dncnn_gray="dncnn=$peers/dncnn_gray_blind.pth"
    local stages=(runs/zoo-gray-denoise-stage3/best runs/zoo-gray-denoise-stage2/best runs/zoo-gray-denoise/best)
    # the stage that ships is chosen on held-out training images (CBSD432's validation split read as gray),
    # beside the first gray flagship and DnCNN-B
    run hfdae evaluate "${stages[@]}" gray-v1 --data "$data/train/CBSD432" --split validation --protocol awgn \
        --convert-channels --no-ssim --baseline "$dncnn_gray" --output "$out/validation-awgn"
    local shipped
    shipped=$(best_of "$out/validation-awgn/results.json" sigma25 "${stages[@]}")
    echo "the gray model is $shipped (best validation PSNR at sigma 25)" >&2
    if [ "$(best_of "$out/validation-awgn/results.json" sigma25 "$shipped" gray-v1)" != "$shipped" ]; then
        echo "gray-v1 is still better on validation at sigma 25: zoo/gray is left as it is" >&2
        return 1
    fi
    run hfdae evaluate "$shipped" gray-v1 --data "$data/test/BSD68" --protocol awgn --no-ssim \
        --baseline input --baseline "$dncnn_gray" --output "$out/bsd68-awgn"
    run hfdae evaluate "$shipped" gray-v1 --data "$data/test/Set12" --protocol awgn --no-ssim \
        --baseline input --baseline bm3d --baseline "$dncnn_gray" --output "$out/set12-awgn"
    # with the x8 self-ensemble (flips and rotations averaged: 8 times the work), a row of its own
    run hfdae evaluate "$shipped" --data "$data/test/BSD68" --protocol awgn --no-ssim --self-ensemble \
        --no-default-baselines --output "$out/bsd68-awgn-x8"
    # what it gave up: the chapter's protocol (it was trained on Gaussian noise only)
    run hfdae evaluate "$shipped" gray-v1 --data "$data/test/BSD68" --protocol seed --baseline input \
        --output "$out/bsd68-seed"
    MODEL_METHOD=$shipped package gray "${shipped%/best}" "$out/bsd68-awgn" "$out/set12-awgn" "$out/bsd68-seed"
}

deblur() {
    # the first colour flagship fine-tuned for blind Gaussian deblurring (blur sigma < 3 plus light noise);
    # `best` is the checkpoint with the best deblur-protocol PSNR on CBSD432's validation split during training
    train configs/zoo-deblur.yaml runs/zoo-deblur
    local out=runs/zoo-deblur/eval
    # the classical tools' one setting (iterations, balance), chosen on the same validation split
    run hfdae evaluate runs/zoo-deblur/best --data "$data/train/CBSD432" --split validation --protocol deblur \
        --no-ssim --no-default-baselines --baseline input --baseline richardson_lucy@30 \
        --baseline richardson_lucy@100 --baseline wiener@1e-3 --baseline wiener@1e-4 --baseline wiener@1e-5 \
        --output "$out/validation-deblur"
    local rl wiener
    rl=$(best_source_of "$out/validation-deblur/results.json" average richardson_lucy)
    wiener=$(best_source_of "$out/validation-deblur/results.json" average wiener)
    echo "chosen on validation: $rl, $wiener" >&2
    # the test set once: the model, its parent (blind to blur strength like it) and the tools given the true kernel
    run hfdae evaluate runs/zoo-deblur/best colour-v1 --data "$data/test/CBSD68" --protocol deblur \
        --no-default-baselines --baseline input --baseline "$rl" --baseline "$wiener" --output "$out/cbsd68-deblur"
    MODEL_METHOD=runs/zoo-deblur/best package deblur runs/zoo-deblur "$out/cbsd68-deblur"
}

photo() {
    # the first colour flagship fine-tuned for sensor noise followed by JPEG (configs/zoo-photo.yaml)
    train configs/zoo-photo.yaml runs/zoo-photo
    local out=runs/zoo-photo/eval
    # FFDNet and CBM3D get their best sigma per condition, chosen on the validation split (16 images; CBM3D
    # on 4 of them, their central 256x256: it takes about 4 s per image and sigma there)
    local sigmas=benchmarks/results
    run python benchmarks/tune_baseline_sigma.py --protocol photo --data "$data/train/CBSD432" --split validation \
        --max-images 16 --sigmas 5 10 15 20 25 30 35 40 --baseline "$ffdnet" --output "$sigmas/photo-sigma-ffdnet.json"
    run python benchmarks/tune_baseline_sigma.py --protocol photo --data "$data/train/CBSD432" --split validation \
        --max-images 4 --crop 256 --sigmas 15 20 25 30 --baseline bm3d --output "$sigmas/photo-sigma-bm3d.json"
    run hfdae evaluate runs/zoo-photo/best colour-v1 --data "$data/test/CBSD68" --protocol photo --no-ssim \
        --baseline "$ffdnet@$sigmas/photo-sigma-ffdnet.json" --output "$out/cbsd68-photo"
    # CBM3D takes about 14 s per image and condition here: the first 5 images, beside the rest
    run hfdae evaluate runs/zoo-photo/best colour-v1 --data "$data/test/CBSD68" --protocol photo --limit 5 \
        --no-ssim --baseline "bm3d@$sigmas/photo-sigma-bm3d.json" --baseline "$ffdnet@$sigmas/photo-sigma-ffdnet.json" \
        --output "$out/cbsd68-photo-bm3d5"
    MODEL_METHOD=runs/zoo-photo/best package photo runs/zoo-photo "$out/cbsd68-photo" "$out/cbsd68-photo-bm3d5"
}

colour_v2() {
    # the design sweep (zoo/sweep_v2.sh: candidates trained on one short budget, validation table and costs),
    # then the chosen design (the flagship-v2 preset) on the budget of configs/zoo-colour-v2.yaml
    run bash zoo/sweep_v2.sh
    train configs/zoo-colour-v2.yaml runs/zoo-colour-v2
    local out=runs/zoo-colour-v2/eval shipped=runs/zoo-colour-v2/best
    # the standard AWGN protocol, blind and given the true sigma, FFDNet (given sigma) and CDnCNN-B beside it
    run hfdae evaluate "$shipped" --data "$data/test/CBSD68" --protocol awgn --no-ssim --given-sigma \
        --baseline input --baseline "$ffdnet" --baseline "$dncnn" --output "$out/cbsd68-awgn"
    run hfdae evaluate "$shipped" --data "$data/test/CBSD68" --protocol seed --baseline input \
        --output "$out/cbsd68-seed"
    # the strength control's "auto" against the true sigma, and the speed beside FFDNet (an idle machine)
    { echo "\$ python benchmarks/noise_estimate.py --data $data/test/CBSD68 --model $shipped --limit 10"
      python benchmarks/noise_estimate.py --data "$data/test/CBSD68" --model "$shipped" --limit 10; } \
        > docs/flagship-v2/noise_estimate_model.md
    MODEL_METHOD=$shipped package colour-v2 runs/zoo-colour-v2 "$out/cbsd68-awgn" "$out/cbsd68-seed"
    { echo "\$ python benchmarks/inference_speed.py --data $data/test/CBSD68 --limit 5 --models colour-v2,colour-v1 --ffdnet $peers/ffdnet_color.pth"
      python benchmarks/inference_speed.py --data "$data/test/CBSD68" --limit 5 --models colour-v2,colour-v1 \
        --ffdnet "$peers/ffdnet_color.pth"; } > docs/flagship-v2/inference_speed.md
    { echo "\$ python benchmarks/tiling.py --model colour-v2 --image $data/test/CBSD68/101085.png --megapixels 12"
      python benchmarks/tiling.py --model colour-v2 --image "$data/test/CBSD68/101085.png" --megapixels 12; } \
        > docs/flagship-v2/tiling.md
}

for target in "$@"; do "$target"; done
