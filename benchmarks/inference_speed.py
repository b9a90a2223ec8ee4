"""Inference speed, peak memory and PSNR of hfdae models beside DnCNN, FFDNet and BM3D, in one run.

    python benchmarks/inference_speed.py --data ../shared/data/test/CBSD68 --limit 10 \
        --models colour,default --dncnn ../shared/peers/dncnn_color_blind.pth \
        --ffdnet ../shared/peers/ffdnet_color.pth --bm3d-limit 3

Every method restores the same noisy images (the standard AWGN protocol: sigma 25, numpy seed 0 per
image) in its own fresh subprocess, so each peak memory (VmHWM, the process's resident high-water
mark, which includes Python, torch and the weights) is its own. Throughput is megapixels restored per
second after one warm-up image. hfdae models run three ways: ``fast`` (hfdae.restore's default:
batch norm folded, channels_last, fp32 on CPUs without native bf16), ``plain`` (no folding, NCHW) and
``bf16`` (autocast; on a CPU without AVX512-BF16/AMX it is emulated, so only its PSNR change is
meaningful there). A benchmark, not a test: it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time


def _peak_rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(spec: dict) -> dict:
    """Run one method on the images (inside the worker subprocess)."""
    import torch

    from hfdae.data import load_images
    from hfdae.baselines import Method, build_baseline
    from hfdae.evaluation import degraded_cases
    from hfdae.inference import load_model
    from hfdae.metrics import psnr
    from hfdae.processing import quantize_8bit

    torch.set_grad_enabled(False)
    kind = spec["kind"]
    if kind == "hfdae":
        model = load_model(spec["model"])
        options = {"fast": spec["variant"] != "plain", "precision": "bf16" if spec["variant"] == "bf16" else "fp32"}
        method = Method.from_model(model, spec["model"], **options)
    elif kind in ("dncnn", "ffdnet"):
        method = build_baseline(f"{kind}={spec['path']}")
    else:
        method = build_baseline("bm3d")
    images, _ = load_images(spec["data"], 3, split=None, limit=spec["limit"])
    cases = [(name, clean.unsqueeze(0), degraded_cases(clean.unsqueeze(0), name, "awgn", sigmas=(spec["sigma"],))[0])
             for name, clean in images]
    method.restore(cases[0][2])  # warm-up (kernel selection, allocations)
    seconds, values, pixels = 0.0, [], 0
    for name, clean, case in cases:
        start = time.perf_counter()
        restored = method.restore(case)
        seconds += time.perf_counter() - start
        values.append(float(psnr(quantize_8bit(restored), clean)[0]))
        pixels += clean.shape[-1] * clean.shape[-2]
    result = {"megapixels_per_second": pixels / 1e6 / seconds, "seconds_per_image": seconds / len(cases),
              "peak_rss_mib": _peak_rss_mib(), "psnr": statistics.fmean(values), "images": len(cases)}
    if kind == "hfdae" and spec["variant"] == "bf16":  # its PSNR change against fp32 on the same images
        reference = Method.from_model(model, spec["model"], precision="fp32")
        fp32 = [float(psnr(quantize_8bit(reference.restore(case)), clean)[0])
                for _, clean, case in cases]
        result["psnr_change_vs_fp32"] = statistics.fmean(values) - statistics.fmean(fp32)
    return result


def _run_worker(spec: dict) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{spec}: worker failed:\n{completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="folder of clean test images (required)")
    parser.add_argument("--limit", type=int, default=10, help="images (default 10)")
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--models", default="default", help="comma-separated hfdae models (zoo names, folders)")
    parser.add_argument("--dncnn", default=None, help="DnCNN weights (.pth)")
    parser.add_argument("--ffdnet", default=None, help="FFDNet weights (.pth)")
    parser.add_argument("--bm3d-limit", type=int, default=0, help="images for BM3D (slow; 0: skip it)")
    parser.add_argument("--bf16-limit", type=int, default=2,
                        help="images for the bf16 rows (emulated bf16 is very slow on CPUs without it)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(json.loads(args.worker))))
        return
    if not args.data:
        parser.error("--data is required")

    import torch

    common = {"data": args.data, "limit": args.limit, "sigma": args.sigma}
    rows = []
    for model in args.models.split(","):
        for variant in ("fast", "plain", "bf16"):
            limit = args.bf16_limit if variant == "bf16" else args.limit
            rows.append((f"hfdae {model}", variant,
                         {"kind": "hfdae", "model": model, "variant": variant, **common, "limit": limit}))
    if args.dncnn:
        rows.append(("DnCNN (" + args.dncnn.rsplit("/", 1)[-1] + ")", "eager fp32", {"kind": "dncnn", "path": args.dncnn, **common}))
    if args.ffdnet:
        rows.append(("FFDNet (" + args.ffdnet.rsplit("/", 1)[-1] + ")", "eager fp32", {"kind": "ffdnet", "path": args.ffdnet, **common}))
    if args.bm3d_limit:
        rows.append(("BM3D (bm3d package)", "CPU", {"kind": "bm3d", **common, "limit": args.bm3d_limit}))

    flags = open("/proc/cpuinfo").read() if platform.system() == "Linux" else ""
    native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads,"
          f" torch {torch.__version__}, native bf16 instructions: {'yes' if native_bf16 else 'no'}")
    print(f"data: {args.data}, first {args.limit} images (BM3D: first {args.bm3d_limit}, bf16: first"
          f" {args.bf16_limit}), AWGN sigma {args.sigma:g},"
          " each method in its own process\n")
    results = [(name, variant, _run_worker(spec)) for name, variant, spec in rows]
    dncnn = next((result for name, _, result in results if name.startswith("DnCNN")), None)
    print("| method | variant | MP/s | s / image | peak RSS (MiB) | PSNR (dB) | throughput vs DnCNN |")
    print("|---|---|---|---|---|---|---|")
    for name, variant, result in results:
        ratio = f"{result['megapixels_per_second'] / dncnn['megapixels_per_second']:.2f}x" if dncnn else "-"
        change = result.get("psnr_change_vs_fp32")
        quality = f"{result['psnr']:.2f} ({result['images']} images)"
        if change is not None:
            quality += f", {change:+.3f} vs fp32 on them"
        print(f"| {name} | {variant} | {result['megapixels_per_second']:.3f} | {result['seconds_per_image']:.2f} |"
              f" {result['peak_rss_mib']:.0f} | {quality} | {ratio} |")


if __name__ == "__main__":
    main()
