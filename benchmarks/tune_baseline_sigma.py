"""The best noise sigma to give a sigma-taking baseline (FFDNet, CBM3D), per condition, chosen on a validation split.

Where a protocol's condition has no true sigma (Poisson-Gaussian noise) or the true one is not the best input
(noise followed by JPEG, which removes part of it), the classical tools are compared at their best setting:
this script runs the baseline at every sigma of a grid on a validation split (never a test set), prints the
mean PSNR table and writes ``{condition: best sigma}`` to a JSON file that ``--baseline SPEC@FILE.json`` reads.

    python benchmarks/tune_baseline_sigma.py --protocol photo --data ../shared/data/train/CBSD432 \\
        --split validation --baseline ffdnet=../shared/peers/ffdnet_color.pth \\
        --output benchmarks/results/photo-sigma-ffdnet.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from hfdae.baselines import build_baseline
from hfdae.data import load_images
from hfdae.evaluation import evaluate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocol", default="photo")
    parser.add_argument("--data", required=True, help="a folder or dataset of clean images")
    parser.add_argument("--split", default="validation", help="the hash split to tune on (default: validation)")
    parser.add_argument("--baseline", required=True, help="bm3d or ffdnet=PATH (without @SIGMA)")
    parser.add_argument("--sigmas", type=float, nargs="+", default=[5, 10, 15, 20, 25, 30, 35, 40])
    parser.add_argument("--max-images", type=int, default=None, help="the first N images of the split")
    parser.add_argument("--crop", type=int, default=None, help="evaluate the central CROP x CROP of each image")
    parser.add_argument("--output", required=True, help="the JSON file {condition: sigma}")
    return parser.parse_args()


def central_crop(image: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None:
        return image
    top, left = max(0, (image.shape[-2] - size) // 2), max(0, (image.shape[-1] - size) // 2)
    return image[..., top:top + size, left:left + size]


def main() -> None:
    args = parse_args()
    if "@" in args.baseline:
        raise SystemExit(f"--baseline {args.baseline!r}: give the baseline without @SIGMA; --sigmas sets the grid")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    images, _ = load_images(args.data, split=args.split, limit=args.max_images)
    images = [(name, central_crop(image, args.crop)) for name, image in images]
    methods = [build_baseline(f"{args.baseline}@{sigma:g}") for sigma in args.sigmas]
    report = evaluate(methods, images, args.protocol, with_ssim=False, data=args.data, split=args.split)
    conditions = [condition for condition in report.conditions]
    print(f"mean PSNR (dB) of {args.baseline} on {len(images)} images of {args.data} ({args.split} split"
          f"{f', central {args.crop}x{args.crop}' if args.crop else ''}), protocol {args.protocol}; "
          f"{platform.machine()}, torch {torch.__version__}\n")
    print("| sigma | " + " | ".join(conditions) + " |")
    print("|---|" + "---|" * len(conditions))
    best: dict[str, tuple[float, float]] = {}
    for sigma, method in zip(args.sigmas, methods, strict=True):
        cells = []
        for condition in conditions:
            summary = report.summary(method.name, condition)
            cells.append("-" if summary is None else f"{summary['mean']:.2f}")
            if summary is not None and (condition not in best or summary["mean"] > best[condition][1]):
                best[condition] = (sigma, summary["mean"])
        print(f"| {sigma:g} | " + " | ".join(cells) + " |")
    chosen = {condition: sigma for condition, (sigma, _) in best.items()}
    print("\nbest sigma per condition: " + ", ".join(f"{c} {s:g}" for c, s in chosen.items()))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(chosen, indent=1) + "\n")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
