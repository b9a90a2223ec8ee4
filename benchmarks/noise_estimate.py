"""The strength control's "auto": the estimated noise sigma against the true one, and what it costs in PSNR.

    python benchmarks/noise_estimate.py --data ../shared/data/test/CBSD68 [--sigmas 5,10,15,25,35,50]
        [--model MODEL --limit N]
    python benchmarks/noise_estimate.py --calibrate --data ../shared/data/train/CBSD432   # the correction's fit

For each sigma: noise drawn as in the standard AWGN protocol (numpy seed 0 per image, not clipped), then
:func:`hfdae.estimate_noise_level` (scikit-image's wavelet estimator) per image: mean and std of the
estimate and its mean error, raw and with the texture-floor correction (``calibrated=True``). With ``--model`` (a model with a noise-level input), also the mean PSNR of
its restorations given the true sigma and given the estimate ("auto"), on the first ``--limit`` images.
``--calibrate`` fits the correction's two constants (``hfdae.inference.NOISE_ESTIMATE_TEXTURE_FLOOR`` and
``NOISE_ESTIMATE_SCALE``) by least squares on 120 images of the train split of ``--data`` at sigma 0-50.
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
    parser.add_argument("--calibrate", action="store_true", help="fit the texture-floor correction on the train split")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.data)
        return
    files = list_image_files(args.data)
    sigmas = [float(value) for value in args.sigmas.split(",")]
    model = load_model(args.model) if args.model else None
    print(f"{len(files)} images of {args.data}; {_machine()}, torch {torch.__version__}\n")
    header = "| true sigma | estimate (mean +- std) | mean error | calibrated estimate | mean error |"
    if model is not None:
        header += " PSNR, true sigma given | PSNR, 'auto' | difference | PSNR, calibrated 'auto' | difference |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for sigma in sigmas:
        estimates, calibrated, given, auto, auto_calibrated = [], [], [], [], []
        for index, path in enumerate(files):
            clean = to_tensor(path)
            (case,) = degraded_cases(clean, path.name, "awgn", sigmas=(sigma,))  # the standard protocol's noise
            noisy = case.degraded
            estimate = float(estimate_noise_level(noisy)[0]) * 255
            estimates.append(estimate)
            calibrated.append(float(estimate_noise_level(noisy, calibrated=True)[0]) * 255)
            if model is not None and (args.limit is None or index < args.limit):
                for level, scores in ((sigma / 255, given), (estimate / 255, auto), (calibrated[-1] / 255, auto_calibrated)):
                    restored = quantize_8bit(restore(model, noisy, noise_level=level, precision="fp32"))
                    scores.append(float(psnr(restored, clean)[0]))
        estimates, calibrated = np.array(estimates), np.array(calibrated)
        row = f"| {sigma:g} | {estimates.mean():.2f} +- {estimates.std():.2f} | {estimates.mean() - sigma:+.2f} |"
        row += f" {calibrated.mean():.2f} +- {calibrated.std():.2f} | {calibrated.mean() - sigma:+.2f} |"
        if model is not None:
            row += f" {np.mean(given):.2f} | {np.mean(auto):.2f} | {np.mean(auto) - np.mean(given):+.3f} |"
            row += f" {np.mean(auto_calibrated):.2f} | {np.mean(auto_calibrated) - np.mean(given):+.3f} |"
        print(row, flush=True)


def calibrate(data: str, images: int = 120) -> None:
    """Fit sqrt(scale * estimate^2 - floor^2) to the true sigma on the train split of ``data``."""
    from scipy.optimize import least_squares

    from hfdae.data import load_images

    clean_images, _ = load_images(data, 3, split="train", limit=images)
    true, raw = [], []
    for index, (name, clean) in enumerate(clean_images):
        clean = clean[None] if clean.ndim == 3 else clean
        noise_source = np.random.RandomState(index)
        for sigma in (0, 2, 5, 10, 15, 20, 25, 35, 50):
            noisy = clean + torch.from_numpy(noise_source.normal(0, sigma / 255, clean.shape)).float()
            true.append(sigma)
            raw.append(float(estimate_noise_level(noisy)[0]) * 255)
    true, raw = np.array(true, dtype=float), np.array(raw)
    fit = least_squares(lambda p: np.sqrt(np.maximum(p[1] * raw**2 - p[0] ** 2, 0)) - true, x0=[5.0, 1.0])
    floor, scale = fit.x
    print(f"{len(clean_images)} images of the train split of {data}; {_machine()}")
    print(f"NOISE_ESTIMATE_TEXTURE_FLOOR = {floor:.2f} / 255\nNOISE_ESTIMATE_SCALE = {scale:.3f}")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
