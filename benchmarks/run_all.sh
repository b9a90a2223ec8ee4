#!/usr/bin/env bash
# Regenerates every measured number in README.md and docs/results/ (run from the repository root on an
# otherwise idle machine; ../shared/data and ../shared/peers must exist). About 15 minutes on 2 CPU cores.
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
# the saturated-highlights failure (clipped skies): clean-input PSNR, and with the image scaled by 0.9
{ run python benchmarks/saturation_check.py --models default \
    --images "$data/test/CBSD68/253055.png,$data/test/CBSD68/101087.png"; } > "$out/saturation.md" 2>/dev/null
# the zoo models' evaluations (CBSD68, both protocols, the peers and CBM3D beside them) are made by
# zoo/train.sh, which writes them into zoo/NAME/.
echo "wrote $out"
