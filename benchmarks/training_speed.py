"""Training step rate of each preset: fp32 vs bf16 autocast, NCHW vs channels_last, eager vs torch.compile.

    python benchmarks/training_speed.py [--presets small,skip,model:colour] [--batch-size 16] [--crop 128] [--steps 4] [--compile]

Prints a Markdown table of images per second (one optimiser step = forward, backward, Adam update on
a batch of crops with the chapter's loss). A benchmark, not a test: numbers depend on the machine,
which is printed first.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from hfdae import DenoisingAutoencoder, DenoisingAutoencoderConfig


def architecture(name: str) -> DenoisingAutoencoderConfig:
    """A preset's configuration, or the architecture of a zoo model / folder (``model:NAME``)."""
    if name.startswith("model:"):
        from hfdae.inference import load_model

        return load_model(name.removeprefix("model:")).config
    return DenoisingAutoencoderConfig.from_preset(name)


def measure(preset: str, batch_size: int, crop: int, steps: int, channels_last: bool, bf16: bool, compiled: bool) -> float:
    torch.manual_seed(0)
    model = DenoisingAutoencoder(architecture(preset)).train()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    forward = torch.compile(model) if compiled else model
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    clean = torch.rand(batch_size, 3, crop, crop).contiguous(memory_format=memory_format)
    noisy = (clean + 0.1 * torch.randn_like(clean)).contiguous(memory_format=memory_format)

    def step() -> None:
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = forward(pixel_values=noisy, labels=clean).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(2):  # warm-up (and compilation)
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="small,noskip,skip",
                        help="presets, and model architectures as model:NAME (zoo name or folder)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow first compile)")
    args = parser.parse_args()
    flags = open("/proc/cpuinfo").read() if platform.system() == "Linux" else ""
    native_bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads,"
          f" torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()},"
          f" native bf16 instructions: {'yes' if native_bf16 else 'no'}")
    print(f"batch {args.batch_size} x 3 x {args.crop} x {args.crop}, Adam, {args.steps} timed steps\n")
    variants = [("NCHW", False, False, False), ("channels_last", True, False, False),
                ("channels_last + bf16 autocast", True, True, False)]
    if args.compile:
        variants.append(("channels_last + torch.compile", True, False, True))
    print("| architecture | " + " | ".join(name for name, *_ in variants) + " |")
    print("|---|" + "---|" * len(variants))
    for preset in args.presets.split(","):
        rates = [measure(preset, args.batch_size, args.crop, args.steps, *flags_) for _, *flags_ in variants]
        print(f"| {preset} | " + " | ".join(f"{rate:.1f} img/s" for rate in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
