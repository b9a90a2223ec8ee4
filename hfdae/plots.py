"""Figures: restoration panels (and, later, learning curves). matplotlib with the Agg backend, no display."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

__all__ = ["PanelRow", "restoration_panel"]


@dataclass
class PanelRow:
    """One row of a restoration panel: a condition's degraded input, its restoration and the clean image."""

    label: str
    degraded: torch.Tensor
    restored: torch.Tensor
    clean: torch.Tensor
    degraded_psnr: float
    restored_psnr: float


def _as_display(image: torch.Tensor):
    array = image.detach().float().clamp(0, 1).cpu()
    array = array[0] if array.shape[0] == 1 else array.permute(1, 2, 0)
    return array.numpy()


def restoration_panel(rows: list[PanelRow], path: str | Path, title: str | None = None) -> Path:
    """Save a grid: one row per condition; columns degraded, restored, clean; PSNR under each tile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    if title:
        figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
