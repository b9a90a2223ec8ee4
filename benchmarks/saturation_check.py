"""The saturated-highlights failure of the first default (green blobs on clipped skies): clean-input PSNR.

    python benchmarks/saturation_check.py --models default,runs/x/best --images ../shared/data/test/CBSD68/253055.png,...

For each model and image: PSNR of the model's output on the CLEAN image (it should change nothing), the
share of pixels at the top value, and the PSNR on the same image scaled by 0.9 (no clipped pixels). Then,
for flat 128x128 images of each ``--constants`` value, the largest change the model makes to them.
"""

from __future__ import annotations

import argparse

import torch

from hfdae.inference import load_model, restore
from hfdae.metrics import psnr
from hfdae.processing import quantize_8bit, to_tensor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="default")
    parser.add_argument("--images", required=True, help="comma-separated image paths")
    parser.add_argument("--constants", default="0,0.5,0.8,0.9,1", help="values of flat test images")
    args = parser.parse_args()
    print("| model | image | saturated pixels | PSNR on the clean image | PSNR on the image x 0.9 |")
    print("|---|---|---|---|---|")
    for spec in args.models.split(","):
        model = load_model(spec)
        for path in args.images.split(","):
            clean = to_tensor(path)
            clean = clean if clean.ndim == 4 else clean.unsqueeze(0)
            saturated = float((clean.max(dim=1).values >= 1.0).float().mean())
            values = []
            for image in (clean, clean * 0.9):
                restored = quantize_8bit(restore(model, image, precision="fp32"))
                values.append(float(psnr(restored, quantize_8bit(image))[0]))
            print(f"| {spec} | {path.rsplit('/', 1)[-1]} | {100 * saturated:.1f} % | {values[0]:.2f} | {values[1]:.2f} |")
    constants = [float(value) for value in args.constants.split(",")]
    print("\nLargest absolute change to a flat 128x128 image of each value:\n")
    print("| model | " + " | ".join(f"{value:g}" for value in constants) + " |")
    print("|---|" + "---|" * len(constants))
    for spec in args.models.split(","):
        model = load_model(spec)
        flat = torch.tensor(constants).view(-1, 1, 1, 1).expand(-1, 3, 128, 128)
        change = (restore(model, flat, precision="fp32") - flat).abs().amax(dim=(1, 2, 3))
        print(f"| {spec} | " + " | ".join(f"{value:.3f}" for value in change.tolist()) + " |")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
