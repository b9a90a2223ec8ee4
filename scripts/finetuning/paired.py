"""Paired differences between the models of an inpainting evaluation, image by image.

    python scripts/finetuning/paired.py docs/finetuning/inpaint-validation/results.json \
        runs/zoo-inpaint/best=runs/zoo-inpaint-scratch/best ...

Each MODEL=REFERENCE pair prints the mean +- standard error over the images of (model - reference), for
PSNR and SSIM, and on how many images the model is ahead (scripts/reproduction/report.py's measure), on the
headline column of the evaluation's protocol.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "reproduction"))
from report import paired_difference  # noqa: E402

from hfdae.evaluation import EvaluationReport  # noqa: E402


def main() -> None:
    results_path, *pairs = sys.argv[1:]
    report = EvaluationReport.load(results_path)
    methods, condition = report.values, report.headline
    for pair in pairs:
        model, reference = pair.split("=")
        cells = []
        for metric, unit, digits in (("psnr", " dB", 2), ("ssim", "", 4)):
            mean, error, ahead, count = paired_difference(methods[model][condition][metric],
                                                          methods[reference][condition][metric])
            cells.append(f"{metric.upper()} {mean:+.{digits}f} +- {error:.{digits}f}{unit} (ahead on {ahead}/{count})")
        print(f"- {model} - {reference}: " + "; ".join(cells))


if __name__ == "__main__":
    main()
