"""Evaluate a checkpoint on a test folder: the chapter's five-output protocol and blind AWGN PSNR.

    python benchmarks/evaluate_checkpoint.py --model runs/default-skip/best --data ../shared/data/test/CBSD68

Prints two Markdown tables (mean and standard deviation over the images):
- the chapter's protocol (section 18.4.4): PSNR / SSIM of the restoration of the clean image and of one
  fixed instance of each of the four degradations, and their five-output average, next to the
  degraded inputs' PSNR;
- the standard AWGN protocol of the published tables: noisy = clean/255 + N(0, (sigma/255)^2) with numpy
  seed 0 per image, not clipped; output clipped to [0, 1] and rounded to uint8; PSNR over all channels.
The full ``hfdae evaluate`` command (with BM3D, DnCNN and FFDNet side by side) is the evaluation issue's.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from hfdae.data import load_images
from hfdae.evaluation import CHAPTER_CONDITIONS, chapter_protocol
from hfdae.inference import load_model, restore
from hfdae.metrics import psnr


def awgn_psnr(model, images, sigma: float) -> tuple[float, float, float]:
    values, seconds = [], 0.0
    for _, clean in images:
        # numpy seed 0 per image, drawn in H x W x C order as the published (KAIR) evaluation does
        noise = np.random.RandomState(0).normal(0, sigma / 255, clean.permute(1, 2, 0).shape)
        noisy = clean.double() + torch.from_numpy(noise).permute(2, 0, 1)
        start = time.perf_counter()
        restored = restore(model, noisy.float().unsqueeze(0))
        seconds += time.perf_counter() - start
        restored = torch.round(restored.clamp(0, 1) * 255) / 255
        values.append(float(psnr(restored, clean.unsqueeze(0))[0]))
    return statistics.fmean(values), statistics.pstdev(values), seconds / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint folder, Hub id or 'default'")
    parser.add_argument("--data", required=True, help="folder of clean test images")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N images")
    parser.add_argument("--sigmas", default="15,25,50")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    model = load_model(args.model)
    images, unreadable = load_images(args.data, model.config.image_channels, limit=args.limit)
    print(f"model {args.model} ({model.config.images_seen:,} training images seen); {len(images)} images from"
          f" {args.data}{'; unreadable: ' + ', '.join(unreadable) if unreadable else ''};"
          f" {platform.processor() or platform.machine()}, torch {torch.__version__}\n")
    start = time.perf_counter()
    result = chapter_protocol(model, images, with_ssim=True)
    psnr_summary, ssim_summary = result.summary("psnr"), result.summary("ssim")
    input_summary = result.summary("input_psnr")
    print("The chapter's protocol (mean +- std over images; 'identity' is the clean input):\n")
    print("| condition | input PSNR (dB) | restored PSNR (dB) | restored SSIM |")
    print("|---|---|---|---|")
    for condition in list(CHAPTER_CONDITIONS) + ["average"]:
        floor = input_summary[condition]
        floor_text = "-" if condition == "identity" else f"{floor['mean']:.2f} +- {floor['std']:.2f}"
        print(f"| {condition} | {floor_text} | {psnr_summary[condition]['mean']:.2f} +- {psnr_summary[condition]['std']:.2f}"
              f" | {ssim_summary[condition]['mean']:.4f} +- {ssim_summary[condition]['std']:.4f} |")
    print(f"\n({time.perf_counter() - start:.0f} s)\n\nStandard AWGN protocol (blind model):\n")
    print("| sigma | PSNR (dB) | seconds per image |")
    print("|---|---|---|")
    for sigma in (float(s) for s in args.sigmas.split(",")):
        mean, std, seconds = awgn_psnr(model, images, sigma)
        print(f"| {sigma:g} | {mean:.2f} +- {std:.2f} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
