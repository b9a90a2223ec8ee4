"""Figures: restoration panels and learning curves (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this module imports without torch, for `hfdae curve --help`
    import torch

__all__ = [
    "PanelRow",
    "restoration_panel",
    "moving_average",
    "learning_curve",
    "detail_panel",
    "psnr_heatmap",
    "pyplot",
    "save_figure",
]


@dataclass
class PanelRow:
    """One row of a restoration panel: a condition's degraded input, its restoration and the clean image."""

    label: str
    degraded: torch.Tensor
    restored: torch.Tensor
    clean: torch.Tensor
    degraded_psnr: float
    restored_psnr: float


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed), imported lazily: it is slow to import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: str | Path, title: str | None = None) -> Path:
    """Title, lay out, save (creating the folder) and close a figure; returns the path."""
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    pyplot().close(figure)
    return path


def _as_display(image: torch.Tensor):
    array = image.detach().float().clamp(0, 1).cpu()
    array = array[0] if array.shape[0] == 1 else array.permute(1, 2, 0)
    return array.numpy()


def restoration_panel(rows: list[PanelRow], path: str | Path, title: str | None = None) -> Path:
    """Save a grid: one row per condition; columns degraded, restored, clean; PSNR under each tile."""
    plt = pyplot()
    height, width = rows[0].clean.shape[-2:]
    tile = 2.6
    figure, axes = plt.subplots(
        len(rows), 3, figsize=(3 * tile, len(rows) * tile * height / width + 0.6), squeeze=False
    )
    for axes_row, row in zip(axes, rows):
        tiles = (
            (row.degraded, f"{row.label}: {row.degraded_psnr:.2f} dB" if row.degraded_psnr != float("inf") else row.label),
            (row.restored, f"restored: {row.restored_psnr:.2f} dB"),
            (row.clean, "clean"),
        )
        for axis, (image, caption) in zip(axes_row, tiles):
            gray = image.shape[0] == 1
            axis.imshow(_as_display(image), cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
            axis.set_xlabel(caption, fontsize=8)
            axis.set_xticks([])
            axis.set_yticks([])
    return save_figure(figure, path, title)


def moving_average(values: list[float], window: int) -> list[float]:
    """Centred moving average over ``window`` records, the window shrinking symmetrically at both ends.

    The chapter smooths its curves with a 50-record moving average; centring it (rather than trailing)
    keeps the steep start of a run from leaking into later points and from producing a jump once the
    first records leave the window.
    """
    import numpy as np

    array = np.asarray(values, dtype=float)
    prefix = np.concatenate([[0.0], np.cumsum(array)])
    averaged = []
    for index in range(len(array)):
        half = min(window // 2, index, len(array) - 1 - index)
        averaged.append(float((prefix[index + half + 1] - prefix[index - half]) / (2 * half + 1)))
    return averaged


DEFAULT_CURVE_WINDOW = 50  # records in the learning curve's moving average


def learning_curve(
    records: list[dict],
    path: str | Path,
    window: int = DEFAULT_CURVE_WINDOW,
    reference_loss: float | None = 1.5,
    title: str | None = None,
    overlays: dict[str, list[dict]] | None = None,
) -> Path:
    """The chapter's learning curve (Figures 18.5-18.10): training loss against images seen.

    A moving average over ``window`` records, one colour per learning-rate stage (``record["stage"]``),
    a horizontal reference line, and validation PSNR (records with ``"validation_psnr"``) on a second
    panel when there is any. ``overlays`` adds other runs' smoothed losses (name -> records) in gray
    styles, for comparisons.
    """
    plt = pyplot()
    training = [record for record in records if "loss" in record]
    validation = [record for record in records if "validation_psnr" in record]
    panels = 2 if validation else 1
    figure, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.2), squeeze=False)
    loss_axis = axes[0][0]
    if training:
        images = [record["images_seen"] for record in training]
        smoothed = moving_average([record["loss"] for record in training], window)
        stages = [record.get("stage", 0) for record in training]
        colours = plt.get_cmap("tab10")
        start = 0
        for index in range(1, len(training) + 1):
            if index == len(training) or stages[index] != stages[start]:
                end = min(index + 1, len(training))  # overlap one point so segments join
                rate = training[start].get("learning_rate")
                if len(set(stages)) > 1:
                    label = f"stage {stages[start]}" + (f" (lr {rate:.0e})" if rate is not None else "")
                else:
                    label = "training loss"
                loss_axis.plot(images[start:end], smoothed[start:end], color=colours(stages[start] % 10), label=label)
                start = index
    for offset, (name, other) in enumerate((overlays or {}).items()):
        other = [record for record in other if "loss" in record]
        if other:
            loss_axis.plot([r["images_seen"] for r in other], moving_average([r["loss"] for r in other], window),
                           color="0.45", linestyle=("--", ":", "-.")[offset % 3], label=name)
    if reference_loss is not None:
        loss_axis.axhline(reference_loss, color="black", linewidth=0.8, linestyle=":")
    loss_axis.set_xlabel("images seen")
    loss_axis.set_ylabel(f"training loss (moving average of {window} records)")
    if loss_axis.get_legend_handles_labels()[0]:
        loss_axis.legend(fontsize=7)
    loss_axis.grid(alpha=0.3)
    if validation:
        psnr_axis = axes[0][1]
        psnr_axis.plot([r["images_seen"] for r in validation], [r["validation_psnr"] for r in validation], "o-")
        psnr_axis.set_xlabel("images seen")
        # the label the trainer recorded from the protocol registry (logs from before it: the chapter's average)
        metric = validation[-1].get("validation_metric") or "five-output average"
        psnr_axis.set_ylabel(f"validation PSNR, {metric} (dB)", fontsize=8)
        psnr_axis.grid(alpha=0.3)
    return save_figure(figure, path, title)


def detail_panel(report, path: str | Path, crop: int | None = 160, title: str | None = None) -> Path:
    """The chapter's detail panel (Figures 18.11-18.12) from an :class:`~hfdae.evaluation.EvaluationReport`.

    Rows: the conditions of the kept image (clean and the four degradations); columns: the input and
    each method's output, the PSNR under each tile; a central ``crop`` x ``crop`` detail (None: whole).
    """
    from .processing import center_crop
    from .metrics import psnr

    if report.kept_image is None:
        raise ValueError("the report kept no image: evaluate(..., keep_image=NAME)")
    plt = pyplot()
    conditions = list(report.kept_inputs)
    methods = list(report.kept_outputs)
    clean = center_crop(report.kept_clean, crop)
    figure, axes = plt.subplots(len(conditions), 1 + len(methods),
                                figsize=(2.3 * (1 + len(methods)), 2.45 * len(conditions)), squeeze=False)
    for row, condition in enumerate(conditions):
        tiles = [("input", report.kept_inputs[condition])]
        tiles += [(method, report.kept_outputs[method].get(condition)) for method in methods]
        for column, (label, image) in enumerate(tiles):
            axis = axes[row][column]
            axis.set_xticks([])
            axis.set_yticks([])
            if image is None:
                axis.set_xlabel(f"{label}: n/a", fontsize=7)
                continue
            detail = center_crop(image, crop)
            value = float(psnr(detail.unsqueeze(0), clean.unsqueeze(0))[0])
            caption = f"{value:.2f} dB" if value != float("inf") else "clean"
            gray = detail.shape[0] == 1
            axis.imshow(_as_display(detail), cmap="gray" if gray else None, vmin=0, vmax=1, interpolation="nearest")
            axis.set_xlabel(f"{caption}", fontsize=7)
            if row == 0:
                axis.set_title(label if len(label) < 28 else label[:26] + "..", fontsize=7)
            if column == 0:
                axis.set_ylabel(condition, fontsize=8)
    return save_figure(figure, path, title or f"{report.kept_image}: detail (PSNR of the detail shown)")


def psnr_heatmap(report, path: str | Path, title: str | None = None) -> Path:
    """Methods x conditions mean PSNR as a heatmap (the robustness matrix of exercise 18.6)."""
    import numpy as np

    plt = pyplot()
    columns = report.columns
    methods = list(report.values)
    matrix = np.full((len(methods), len(columns)), np.nan)
    for row, method in enumerate(methods):
        for column, condition in enumerate(columns):
            summary = report.summary(method, condition)
            if summary is not None:
                matrix[row, column] = summary["mean"]
    figure, axis = plt.subplots(figsize=(1.3 * len(columns) + 3, 0.55 * len(methods) + 1.6))
    image = axis.imshow(matrix, cmap="viridis", aspect="auto")
    for row in range(len(methods)):
        for column in range(len(columns)):
            if not np.isnan(matrix[row, column]):
                axis.text(column, row, f"{matrix[row, column]:.2f}", ha="center", va="center", fontsize=8,
                          color="white" if matrix[row, column] < np.nanmean(matrix) else "black")
    axis.set_xticks(range(len(columns)), columns, fontsize=8)
    axis.set_yticks(range(len(methods)), methods, fontsize=8)
    figure.colorbar(image, ax=axis, label="mean PSNR (dB)")
    return save_figure(figure, path, title or f"mean PSNR, protocol {report.protocol}")
