"""What a model design costs: parameters, GMACs at 256x256 and CPU restoration speed beside FFDNet.

    python benchmarks/design_cost.py --candidates zoo/sweep_v2_candidates.yaml [--size 512] [--repeats 3]

Each candidate (name -> overrides of the ``skip`` preset) is built with fresh weights (speed does not
depend on their values) and restores one 3 x SIZE x SIZE image with hfdae's inference copy (batch norm
folded, channels_last, fp32), FFDNet's architecture (colour: 12 convolutions of width 96 at half
resolution) beside it in the same process. Throughput is megapixels per second over ``--repeats`` runs
after a warm-up; the ratio to FFDNet is what carries over between machines. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch
import yaml

from hfdae import DenoisingAutoencoder, DenoisingAutoencoderConfig, prepare_for_inference
from hfdae.peers import FFDNet
from hfdae.complexity import count_macs, count_parameters


def _machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def _seconds(function, repeats: int) -> float:
    function()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", required=True, help="YAML: name -> overrides of the skip preset")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    candidates = yaml.safe_load(Path(args.candidates).read_text())
    image = torch.rand(1, 3, args.size, args.size)
    megapixels = args.size * args.size / 1e6
    ffdnet = FFDNet().eval()
    ffdnet_seconds = _seconds(lambda: ffdnet(image, 25.0), args.repeats)
    print(f"{args.size}x{args.size} RGB, {_machine()}, torch {torch.__version__}\n")
    print("| design | parameters | GMACs at 256x256 | MP/s | vs FFDNet |")
    print("|---|---|---|---|---|")
    print(f"| FFDNet (architecture of the published colour model) | {count_parameters(ffdnet) / 1e6:.2f} M | 13.9 (published)"
          f" | {megapixels / ffdnet_seconds:.3f} | 1.00x |")
    fast_input = image.contiguous(memory_format=torch.channels_last)
    for name, overrides in candidates.items():
        model = DenoisingAutoencoder(DenoisingAutoencoderConfig.from_preset("skip", **overrides)).eval()
        fast = prepare_for_inference(model)
        seconds = _seconds(lambda: fast(fast_input), args.repeats)
        print(f"| {name} | {count_parameters(model) / 1e6:.2f} M | {count_macs(model) / 1e9:.2f} |"
              f" {megapixels / seconds:.3f} | {ffdnet_seconds / seconds:.2f}x |", flush=True)


if __name__ == "__main__":
    with torch.inference_mode():
        main()
