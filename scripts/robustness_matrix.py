"""The robustness matrix of exercise 18.6: every model under every condition of the protocols, one table and one figure.

Each protocol runs through ``hfdae evaluate`` (:func:`hfdae.evaluation.evaluate_models`: the same fixed-seed
inputs for every model, the degraded input as the floor row), its ``results.json`` kept under OUTPUT/PROTOCOL;
the matrix gathers the mean PSNR of every (model, condition) into ``matrix.md`` and ``matrix.png`` (the colour
is the gain over the degraded input, so columns of different difficulty compare).

    python scripts/robustness_matrix.py colour-v1 runs/zoo-deblur/best runs/zoo-photo/best inpaint \\
        --data ../shared/data/test/CBSD68 --limit 8 --output docs/robustness
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import numpy as np
import torch

from hfdae.baselines import INPUT_ROW_NAME
from hfdae.evaluation import EvaluationReport, evaluate_models
from hfdae.protocols import AVERAGE, IDENTITY

DEFAULT_PROTOCOLS = ("seed", "awgn", "deblur", "photo", "inpaint")
GAIN_COLOUR_LIMIT = 8.0  # dB of gain (or loss) at which the colours saturate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="model sources (zoo names, model or run folders)")
    parser.add_argument("--data", required=True, help="clean test images")
    parser.add_argument("--protocols", nargs="+", default=list(DEFAULT_PROTOCOLS))
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    parser.add_argument("--output", required=True, help="folder for matrix.md, matrix.png and PROTOCOL/results.json")
    parser.add_argument("--reuse", action="store_true", help="read OUTPUT/PROTOCOL/results.json where it exists")
    return parser.parse_args()


def gather(reports: dict[str, EvaluationReport], models: list[str]) -> tuple[list[str], list[str], np.ndarray]:
    """(rows, columns 'protocol/condition', mean PSNR [rows, columns]; NaN where a method did not run)."""
    rows = models + [INPUT_ROW_NAME]
    columns, values = [], []
    for protocol, report in reports.items():
        for condition in report.columns:
            if condition == IDENTITY and protocol != "seed":
                continue
            columns.append(f"{protocol}/{condition}")
            values.append([(report.summary(row, condition) or {"mean": np.nan})["mean"] if row in report.values
                           else np.nan for row in rows])
    return rows, columns, np.array(values, dtype=float).T


def markdown(rows: list[str], columns: list[str], table: np.ndarray, header: str) -> str:
    lines = [header, "", "| model | " + " | ".join(f"`{column}`" for column in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for row, values in zip(rows, table, strict=True):
        best = np.nanmax(table, axis=0)
        cells = [("-" if np.isnan(value) else (f"**{value:.2f}**" if value == best[index] else f"{value:.2f}"))
                 for index, value in enumerate(values)]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def figure(rows: list[str], columns: list[str], table: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    floor = table[-1]
    gain = table - np.where(np.isnan(floor), np.nanmin(table, axis=0), floor)
    fig, axis = plt.subplots(figsize=(1.0 + 0.62 * len(columns), 1.2 + 0.5 * len(rows)))
    limit = min(float(np.nanmax(np.abs(gain)) or 1.0), GAIN_COLOUR_LIMIT)  # the clean column's gains run to 50 dB
    image = axis.imshow(np.clip(gain, -limit, limit), cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    for (row, column), value in np.ndenumerate(table):
        if not np.isnan(value):
            axis.text(column, row, f"{value:.1f}", ha="center", va="center", fontsize=7)
    axis.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=8)
    axis.set_yticks(range(len(rows)), rows, fontsize=8)
    fig.colorbar(image, ax=axis, label=f"PSNR gain over the input\n(dB, colours clipped at {limit:g})")
    axis.set_title("Every model under every condition (mean PSNR, dB)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    output = Path(args.output)
    reports: dict[str, EvaluationReport] = {}
    for protocol in args.protocols:
        folder = output / protocol
        if args.reuse and (folder / "results.json").exists():
            reports[protocol] = EvaluationReport.load(folder / "results.json")
            continue
        reports[protocol] = evaluate_models(args.models, args.data, protocol, ["input"], limit=args.limit,
                                            with_ssim=False, sigmas=(25,) if protocol == "awgn" else None,
                                            output=folder)
    rows, columns, table = gather(reports, [str(model) for model in args.models])
    first = next(iter(reports.values()))
    header = (f"Mean PSNR (dB) on {len(first.images)} images of `{args.data}`, every protocol's fixed-seed inputs;"
              f" {first.machine}. Bold: the best of the column. `{AVERAGE}` columns are each protocol's"
              f" per-image mean. Made by `python scripts/robustness_matrix.py {' '.join(args.models)} --data"
              f" {args.data}{f' --limit {args.limit}' if args.limit else ''} --output {args.output}`"
              f" ({platform.machine()}, torch {torch.__version__}).")
    output.mkdir(parents=True, exist_ok=True)
    (output / "matrix.md").write_text(markdown(rows, columns, table, header))
    figure(rows, columns, table, output / "matrix.png")
    print((output / "matrix.md").read_text())


if __name__ == "__main__":
    main()
