"""The strength control's "auto": the estimated noise sigma against the true one, and what it costs in PSNR.

    python benchmarks/noise_estimate.py --data ../shared/data/test/CBSD68 [--sigmas 5,10,15,25,35,50]
        [--model MODEL --limit N]

For each sigma: noise drawn as in the standard AWGN protocol (numpy seed 0 per image, not clipped), then
:func:`hfdae.estimate_noise_level` (scikit-image's wavelet estimator) per image: mean and std of the
estimate and its mean error. With ``--model`` (a model with a noise-level input), also the mean PSNR of
its restorations given the true sigma and given the estimate ("auto"), on the first ``--limit`` images.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np
import torch

from hfdae.evaluation import degraded_cases
from hfdae.inference import estimate_noise_level, load_model, restore
from hfdae.metrics import psnr
from hfdae.processing import list_image_files, quantize_8bit, to_tensor


def _machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--sigmas", default="5,10,15,25,35,50")
    parser.add_argument("--model", default=None, help="a model with a noise-level input, for the PSNR columns")
    parser.add_argument("--limit", type=int, default=None, help="images for the PSNR columns (default: all)")
    args = parser.parse_args()
    files = list_image_files(args.data)
    sigmas = [float(value) for value in args.sigmas.split(",")]
    model = load_model(args.model) if args.model else None
    print(f"{len(files)} images of {args.data}; {_machine()}, torch {torch.__version__}\n")
    header = "| true sigma | estimate (mean +- std) | mean error |"
    if model is not None:
        header += " PSNR, true sigma given | PSNR, 'auto' | difference |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for sigma in sigmas:
        estimates, given, auto = [], [], []
        for index, path in enumerate(files):
            clean = to_tensor(path)
            (case,) = degraded_cases(clean, path.name, "awgn", sigmas=(sigma,))  # the standard protocol's noise
            noisy = case.degraded
            estimate = float(estimate_noise_level(noisy)[0]) * 255
            estimates.append(estimate)
            if model is not None and (args.limit is None or index < args.limit):
                for level, scores in ((sigma / 255, given), (estimate / 255, auto)):
                    restored = quantize_8bit(restore(model, noisy, noise_level=level, precision="fp32"))
                    scores.append(float(psnr(restored, clean)[0]))
        estimates = np.array(estimates)
        row = f"| {sigma:g} | {estimates.mean():.2f} +- {estimates.std():.2f} | {estimates.mean() - sigma:+.2f} |"
        if model is not None:
            row += f" {np.mean(given):.2f} | {np.mean(auto):.2f} | {np.mean(auto) - np.mean(given):+.3f} |"
        print(row, flush=True)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
