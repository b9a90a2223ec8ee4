"""Is the no-skip model's output blurry? (Figure 18.4; docs/reproduction.md)

Blur removes fine detail, and the Laplacian measures it: for each model and each condition of the
chapter's protocol, the energy of the Laplacian of the output over that of the clean image (1: as
sharp as the clean image; below 1: detail lost), averaged over the held-out images (the `validation`
split of CBSD432, central crops).

    python scripts/reproduction/sharpness.py [--runs runs/repro-skip-adam/final ...]
"""

from __future__ import annotations

import argparse

import kornia
import torch

from common import HELD_OUT_DATA, HELD_OUT_SPLIT, held_out_crops, short_name
from hfdae.protocols import CHAPTER_CONDITIONS, degrade_for_evaluation
from hfdae.inference import load_model


def detail_energy(images: torch.Tensor) -> torch.Tensor:
    """Mean squared Laplacian of each image of a [B, C, H, W] batch (its fine detail)."""
    return kornia.filters.laplacian(images, kernel_size=3).square().mean(dim=(1, 2, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=HELD_OUT_DATA)
    parser.add_argument("--split", default=HELD_OUT_SPLIT, help="a hash split of --data; empty: all of it")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--runs", nargs="*",
                        default=[f"runs/repro-{name}/final" for name in ("skip-adam", "noskip-adam", "small-adam")])
    args = parser.parse_args()
    images = held_out_crops(args.data, args.split, args.crop)
    print(f"{len(images)} images of `{args.data}` (split {args.split}, central {args.crop}x{args.crop});"
          " Laplacian energy of the output / of the clean image, mean over the images\n")
    print("| model | " + " | ".join(CHAPTER_CONDITIONS) + " |")
    print("|---|" + "---|" * len(CHAPTER_CONDITIONS))
    rows = {"input": None, **{run: load_model(run).eval() for run in args.runs}}
    for label, model in rows.items():
        ratios = []
        for condition in CHAPTER_CONDITIONS:
            values = []
            for name, clean in images:
                degraded = degrade_for_evaluation(clean, condition, name).images
                with torch.no_grad():
                    output = degraded if model is None else model(degraded).reconstruction.clamp(0, 1)
                values.append(float(detail_energy(output) / detail_energy(clean)))
            ratios.append(sum(values) / len(values))
        name = label if model is None else short_name(label)
        print(f"| {name} | " + " | ".join(f"{ratio:.2f}" for ratio in ratios) + " |")


if __name__ == "__main__":
    main()
