"""Does clamping the output kill the gradient? (section 18.2; docs/reproduction.md)

For each output-head model of ``scripts/reproduction/train.sh heads``, run the held-out images (the
`validation` split of CBSD432) through the chapter's five evaluation conditions and measure, per pixel:

- how often the head's output leaves [0, 1] (linear heads are unbounded);
- what fraction of pixels a ``clamp(x, 0, 1)`` after the head would give an exactly zero gradient, checked
  with autograd on the chapter's loss, and of those, how many still have an error above 1/255 (an error
  the clamp stops the network from seeing);
- how often a saturating head (sigmoid, tanh, scaled tanh) passes back less than a tenth of the linear
  head's slope dx/dz = 1/2 (its gradient has nearly vanished there).

    python scripts/reproduction/clamp_gradient.py [--data FOLDER] [--split validation] [--runs runs/repro-small-*]
"""

from __future__ import annotations

import argparse

import torch

from common import HELD_OUT_DATA, HELD_OUT_SPLIT, held_out_crops, short_name
from hfdae.protocols import CHAPTER_CONDITIONS, degrade_for_evaluation
from hfdae.inference import load_model
from hfdae.modeling_hfdae import reconstruction_loss

HEAD_RUNS = ("small-linear", "small-linear-penalty", "small-sigmoid", "small-tanh", "small-scaled-tanh")


def head_statistics(model, images: list[tuple[str, torch.Tensor]]) -> dict[str, float]:
    """Pixel fractions (see the module docstring) over every image and condition."""
    captured: dict[str, torch.Tensor] = {}
    hook = model.output_head.register_forward_hook(lambda module, inputs, output: captured.update(z=inputs[0]))
    counts = {"pixels": 0, "out_of_range": 0, "zero_gradient": 0, "zero_gradient_with_error": 0, "flat_slope": 0}
    config = model.config
    try:
        for name, clean in images:
            for condition in CHAPTER_CONDITIONS:
                degraded = degrade_for_evaluation(clean, condition, name).images
                with torch.no_grad():
                    model(degraded)
                z = captured["z"].detach().requires_grad_(True)
                head_output = model.output_head(z)
                clamped = head_output.clamp(0, 1)
                loss, _ = reconstruction_loss(clamped, clean, config.mse_weight, config.l1_weight)
                (gradient,) = torch.autograd.grad(loss, z, retain_graph=True)
                (slope,) = torch.autograd.grad(head_output.sum(), z)
                error = (clamped - clean).abs() > 1 / 255
                zero = gradient == 0
                counts["pixels"] += z.numel()
                counts["out_of_range"] += int(((head_output < 0) | (head_output > 1)).sum())
                counts["zero_gradient"] += int(zero.sum())
                counts["zero_gradient_with_error"] += int((zero & error).sum())
                counts["flat_slope"] += int((slope.abs() < 0.05).sum())
    finally:
        hook.remove()
    pixels = counts.pop("pixels")
    return {key: 100 * value / pixels for key, value in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=HELD_OUT_DATA)
    parser.add_argument("--split", default=HELD_OUT_SPLIT, help="a hash split of --data; empty: all of it")
    parser.add_argument("--runs", nargs="*", default=[f"runs/repro-{name}/final" for name in HEAD_RUNS])
    parser.add_argument("--crop", type=int, default=256, help="central crop side of each image")
    args = parser.parse_args()
    images = held_out_crops(args.data, args.split, args.crop)
    print(f"{len(images)} images of `{args.data}` (split {args.split}, central {args.crop}x{args.crop}),"
          f" the five conditions of the chapter's protocol; % of pixels\n")
    print("| model | head | output outside [0, 1] | clamp: zero gradient | clamp: zero gradient,"
          " error > 1/255 | head slope < 0.05 |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        model = load_model(run).eval()
        stats = head_statistics(model, images)
        head = model.config.output_head + (" + penalty" if model.config.out_of_range_weight else "")
        print(f"| {short_name(run)} | {head} | {stats['out_of_range']:.2f} |"
              f" {stats['zero_gradient']:.2f} | {stats['zero_gradient_with_error']:.2f} | {stats['flat_slope']:.2f} |")


if __name__ == "__main__":
    main()
