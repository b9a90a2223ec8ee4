"""Tiled inference: seams and memory.

    python benchmarks/tiling.py [--model default] [--image ../shared/data/test/CBSD68/0001.png] [--megapixels 12]

1. On a medium image (a CBSD68 photo, or a bundled sample when none is given) with Gaussian noise
   (sigma 25, seed 0): PSNR of whole-image restoration and of tiled restoration (256 tiles, overlaps of
   32, 64 and 128 by default), and their difference (the target: under 0.05 dB); then the same on the image
   cropped to a multiple of the model's size multiple (no padding in the whole-image pass).
2. A synthetic ``--megapixels`` image (the sample photo tiled and mirrored to size) restored with
   automatic tiling in a fresh subprocess: wall time and peak resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time

import torch


def _peak_rss_mib() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def large_image_run(model_name: str, megapixels: float) -> None:
    """Restore a synthetic large image; print seconds and peak memory (run in a subprocess)."""
    from hfdae.inference import load_model, restore
    from hfdae.processing import array_to_tensor
    from hfdae.samples import sample_image

    model = load_model(model_name)
    base = array_to_tensor(sample_image("coffee"))
    side_height = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    side_width = int(megapixels * 1e6 / side_height)
    reps_y = -(-side_height // base.shape[1])
    reps_x = -(-side_width // base.shape[2])
    image = base.repeat(1, reps_y, reps_x)[:, :side_height, :side_width]
    image = (image + 0.1 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))).unsqueeze(0)
    before = _peak_rss_mib()
    start = time.perf_counter()
    restored = restore(model, image)
    seconds = time.perf_counter() - start
    print(f"{side_width}x{side_height} ({side_width * side_height / 1e6:.1f} MP): {seconds:.1f} s"
          f" ({side_width * side_height / 1e6 / seconds:.2f} MP/s), peak resident memory {_peak_rss_mib():.0f} MiB"
          f" (before the restoration: {before:.0f} MiB); output {tuple(restored.shape)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--image", default=None, help="a medium test image (default: a bundled sample photo)")
    parser.add_argument("--tile", type=int, default=256, help="tile side (the automatic default is 512; 256 so that a medium image has several tiles)")
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--large-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.large_only:
        large_image_run(args.model, args.megapixels)
        return

    from hfdae.inference import load_model, restore
    from hfdae.metrics import psnr
    from hfdae.processing import array_to_tensor, to_tensor
    from hfdae.samples import sample_image

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    model = load_model(args.model)
    clean = to_tensor(args.image) if args.image else array_to_tensor(sample_image("rocket")).unsqueeze(0)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0)) * 25 / 255
    noisy = clean + noise
    print(f"\n{args.image or 'rocket (bundled)'}, sigma 25:")
    # the network pads an image whose sides are not multiples of its size multiple (its downsampling) on the
    # bottom and right; tiles of a multiple size aligned to the image's edges need no padding. The second
    # row, on the image cropped to a multiple, tells the padding's effect from the tiling's own
    multiple = model.config.size_multiple
    height, width = clean.shape[-2:]
    for label, crop in (("as is", (height, width)), (f"cropped to a multiple of {multiple}",
                                                        (height - height % multiple, width - width % multiple))):
        clean_part, noisy_part = clean[..., :crop[0], :crop[1]], noisy[..., :crop[0], :crop[1]]
        whole = restore(model, noisy_part, tile_size=None)
        whole_psnr = float(psnr(whole, clean_part)[0])
        for overlap in sorted(overlap for overlap in {args.overlap // 2, args.overlap, args.overlap * 2} if overlap < args.tile):
            tiled = restore(model, noisy_part, tile_size=args.tile, tile_overlap=overlap)
            tiled_psnr = float(psnr(tiled, clean_part)[0])
            print(f"  {label} {crop}: whole {whole_psnr:.3f} dB, tiled ({args.tile}, overlap {overlap}) {tiled_psnr:.3f} dB,"
                  f" difference {abs(whole_psnr - tiled_psnr):.4f} dB; max abs pixel difference"
                  f" {float((whole - tiled).abs().max()):.4f}")
    print()
    subprocess.run([sys.executable, __file__, "--large-only", "--model", args.model, "--megapixels", str(args.megapixels)],
                   check=True)


if __name__ == "__main__":
    main()
