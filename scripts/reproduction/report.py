"""Print the tables of docs/reproduction.md from the evaluation results that evaluate.sh wrote.

For each results folder: the mean PSNR of every model per condition, and the paired difference of each
model's per-image PSNR against a reference model (mean +- standard error over the images, and on how
many images the model is ahead), so small differences can be told from noise between images.

    python scripts/reproduction/report.py                    # every group
    python scripts/reproduction/report.py core optimisers    # some
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from common import short_name
from hfdae.evaluation import EvaluationReport
from hfdae.runs import LOG, read_log

RESULTS = Path(__file__).resolve().parent.parent.parent / "docs" / "reproduction"  # where evaluate.sh writes
# results folder -> the model the others are compared with
GROUPS = {
    "core": "skip-adam",
    "optimisers": "skip-adam",
    "blur-seed": "skip-adam",
    "blur-deblur": "skip-adam",
    "heads": "small-linear",
    "variants": "skip-adam",
    "long": "long-skip-adam",
    "blur-flagship": "input (no restoration)",
}
# further paired comparisons (model, reference, condition) printed under a group's table
COMPARISONS = {
    "core": [("small-adam", "skip-adam", condition) for condition in ("gaussian", "salt_pepper", "blur", "knockout")],
    "optimisers": [("skip-sgd", "skip-sgd-constant", "average"), ("skip-momentum", "skip-sgd", "average"),
                   ("noskip-adam", "noskip-sgd", "average")],
    "blur-seed": [("skip-noblur", "skip-adam", "blur")],
    "long": [("long-small-adam", "long-skip-adam", condition) for condition in ("gaussian", "salt_pepper", "blur", "knockout")]
    + [("long-skip-adam", "skip-adam", "average"), ("long-small-adam", "small-adam", "average")],
    "heads": [(name, "small-linear-penalty", "average") for name in ("small-sigmoid", "small-tanh", "small-scaled-tanh")],
}


def paired_difference(ours: dict[str, float], reference: dict[str, float]) -> tuple[float, float, int, int]:
    """Mean and standard error of ``ours - reference`` over the shared images, images ahead, images."""
    differences = [ours[name] - reference[name] for name in reference if name in ours]
    count = len(differences)
    mean = sum(differences) / count
    variance = sum((value - mean) ** 2 for value in differences) / max(count - 1, 1)
    return mean, math.sqrt(variance / count), sum(value > 0 for value in differences), count


def methods_by_short_name(results: EvaluationReport) -> dict[str, dict]:
    """The evaluation's rows (``{column: {metric: {image: value}}}``) keyed by :func:`short_name`."""
    return {short_name(label): values for label, values in results.values.items()}


def paired_text(methods: dict[str, dict], model: str, reference: str, condition: str) -> str:
    """``+0.48 +- 0.23 dB (ahead on 18/21)``: :func:`paired_difference` of two methods on one condition."""
    mean, error, ahead, count = paired_difference(methods[model][condition]["psnr"], methods[reference][condition]["psnr"])
    return f"{mean:+.2f} +- {error:.2f} dB (ahead on {ahead}/{count})"


def group_table(results: EvaluationReport, reference: str) -> str:
    """Markdown: model x column mean PSNR, and the paired difference of the protocol's headline column."""
    methods = methods_by_short_name(results)
    conditions = results.columns
    headline = results.headline
    header = ["model", *conditions, f"paired difference ({headline}) vs {reference}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, values in methods.items():
        label = next(label for label in results.values if short_name(label) == name)
        cells = [name] + [f"{summary['mean']:.2f}" if (summary := results.summary(label, condition)) else "-"
                          for condition in conditions]
        if name == reference or reference not in methods or headline not in values:
            cells.append("(reference)" if name == reference else "")
        else:
            cells.append(paired_text(methods, name, reference, headline))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_table(runs_folder: Path = Path("runs")) -> str:
    """Markdown: every runs/repro-* run with what it was, its wall time, final training loss and validation PSNR."""
    lines = ["| run | description | images | wall time | training loss (last 20 records) |"
             " validation PSNR at the end (best) |", "|---|---|---|---|---|---|"]
    for run in sorted(runs_folder.glob("repro-*")):
        if not (run / LOG).is_file():
            continue
        records = read_log(run)
        losses = [record["loss"] for record in records if "loss" in record]
        validations = [record["validation_psnr"] for record in records if "validation_psnr" in record]
        config_path = run / "final" / "config.json"
        if config_path.is_file():
            summary = json.loads(config_path.read_text())["training_summary"]
            description, wall = summary["description"], f"{summary['wall_seconds'] / 60:.1f} min"
            if not summary.get("hardware", "CPU").startswith("CPU"):
                wall += f" ({summary['hardware']})"
        else:
            description, wall = "**did not finish** (diverged or stopped: see its log)", "-"
        loss = f"{sum(losses[-20:]) / len(losses[-20:]):.3f}" if losses else "-"
        validation = f"{validations[-1]:.2f} ({max(validations):.2f})" if validations else "-"
        images = records[-1]["images_seen"] if records else 0
        lines.append(f"| {run.name.removeprefix('repro-')} | {description} | {images:,} | {wall} | {loss} | {validation} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", default=["runs", *GROUPS], help=f"of {['runs', *GROUPS]}")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the folder of the groups' results")
    parser.add_argument("--runs", type=Path, default=Path("runs"), help="the folder of the runs/repro-* runs")
    args = parser.parse_args()
    for group in args.groups:
        if group == "runs":
            print("## runs\n\n" + runs_table(args.runs) + "\n")
            continue
        path = args.results / group / "results.json"
        if not path.is_file():
            print(f"## {group}\n\n{path} is missing: run scripts/reproduction/evaluate.sh first\n")
            continue
        results = EvaluationReport.load(path)
        print(f"## {group}\n\nprotocol `{results.protocol}`, {len(results.images)} images of "
              f"`{results.data}`, PSNR dB; {results.machine}\n")
        print(group_table(results, GROUPS[group]) + "\n")
        methods = methods_by_short_name(results)
        for model, reference, condition in COMPARISONS.get(group, []):
            if model in methods and reference in methods:
                print(f"- {model} - {reference} ({condition}): {paired_text(methods, model, reference, condition)}")
        if COMPARISONS.get(group):
            print()


if __name__ == "__main__":
    main()
