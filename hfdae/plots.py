"""Figures: restoration panels and learning curves (matplotlib, Agg backend, no display)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["PanelRow", "restoration_panel", "moving_average", "learning_curve", "pyplot", "save_figure"]


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
    """Trailing moving average (shorter windows at the start), as the chapter's curves are smoothed."""
    averaged, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        averaged.append(total / min(index + 1, window))
    return averaged


def learning_curve(
    records: list[dict],
    path: str | Path,
    window: int = 50,
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
    loss_axis.legend(fontsize=7)
    loss_axis.grid(alpha=0.3)
    if validation:
        psnr_axis = axes[0][1]
        psnr_axis.plot([r["images_seen"] for r in validation], [r["validation_psnr"] for r in validation], "o-")
        psnr_axis.set_xlabel("images seen")
        psnr_axis.set_ylabel("validation PSNR, five-output average (dB)")
        psnr_axis.grid(alpha=0.3)
    return save_figure(figure, path, title)
