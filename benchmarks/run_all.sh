#!/usr/bin/env bash
# Regenerates every measured number in README.md and docs/results/ (run from the repository root on an
# otherwise idle machine; ../shared/data and ../shared/peers must exist). About 30 minutes on 2 CPU cores.
set -euo pipefail
out=docs/results
mkdir -p "$out"
data=../shared/data
peers=../shared/peers
run() { echo "\$ $*" ; "$@" ; }

{ run hfdae presets; } > "$out/presets.md"
{ run python benchmarks/training_speed.py --compile --presets small,noskip,skip,model:default; } > "$out/training_speed.md" 2>/dev/null
{ run python benchmarks/data_pipeline.py --data "$data/train/CBSD432" --seconds 10; } > "$out/data_pipeline.md" 2>/dev/null
{ run python benchmarks/tiling.py --model default; } > "$out/tiling.md" 2>/dev/null
# every zoo model beside the peers on the same images, each in its own process (speed, memory, PSNR)
{ run python benchmarks/inference_speed.py --data "$data/test/CBSD68" --limit 10 --models default \
    --dncnn "$peers/dncnn_color_blind.pth" --ffdnet "$peers/ffdnet_color.pth" --bm3d-limit 2; } \
    > "$out/inference_speed.md" 2>/dev/null
# the embedded default on the test set it never saw: the chapter's protocol, with the blind CDnCNN-B beside it
{ run hfdae evaluate default --data "$data/test/CBSD68" --protocol seed \
    --baseline input --baseline "dncnn=$peers/dncnn_color_blind.pth" --output "$out/default-cbsd68-seed"; } \
    > "$out/default-cbsd68-seed.md" 2>/dev/null
# the standard AWGN protocol with the published peers in the same run
{ run hfdae evaluate default --data "$data/test/CBSD68" --protocol awgn --no-ssim \
    --baseline input --baseline "dncnn=$peers/dncnn_color_blind.pth" --baseline "ffdnet=$peers/ffdnet_color.pth" \
    --output "$out/default-cbsd68-awgn"; } > "$out/default-cbsd68-awgn.md" 2>/dev/null
# BM3D takes about 6.5 s per image and sigma here: the first 10 images only, everything else beside it
{ run hfdae evaluate default --data "$data/test/CBSD68" --protocol awgn --no-ssim --limit 10 \
    --baseline input --baseline bm3d --baseline "dncnn=$peers/dncnn_color_blind.pth" \
    --output "$out/default-cbsd68-awgn-bm3d10"; } > "$out/default-cbsd68-awgn-bm3d10.md" 2>/dev/null
echo "wrote $out"
