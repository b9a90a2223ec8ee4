"""Compare the training losses of the fine-tuned and the from-scratch inpainting runs (docs/finetuning.md).

    python scripts/finetuning/losses.py runs/zoo-inpaint runs/zoo-inpaint-scratch

Prints at how many of the logged points (the same images seen in both runs) the first run's loss is the
lower one, and the mean loss of each over the first and the last 1,000 crops.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hfdae.runs import read_log


def training_losses(run_dir: Path) -> dict[int, float]:
    """images seen -> training loss, from a run's log.jsonl (validation records have no loss)."""
    return {record["images_seen"]: record["loss"] for record in read_log(run_dir) if "loss" in record}


def mean_loss(losses: dict[int, float], low: int, high: int) -> float:
    window = [loss for seen, loss in losses.items() if low < seen <= high]
    return sum(window) / len(window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("reference", type=Path)
    parser.add_argument("--window", type=int, default=1000, help="crops at the start and the end to average")
    args = parser.parse_args()
    run, reference = training_losses(args.run), training_losses(args.reference)
    shared = sorted(set(run) & set(reference))
    lower = sum(run[seen] < reference[seen] for seen in shared)
    end = shared[-1]
    print(f"{args.run} has the lower training loss at {lower} of the {len(shared)} points both runs logged")
    for name, losses in ((args.run, run), (args.reference, reference)):
        print(f"{name}: mean loss {mean_loss(losses, 0, args.window):.2f} over the first {args.window:,} crops,"
              f" {mean_loss(losses, end - args.window, end):.2f} over the last {args.window:,}")


if __name__ == "__main__":
    main()
