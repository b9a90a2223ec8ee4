"""What the scripts/reproduction scripts share: the held-out images they measure on."""

from __future__ import annotations

import torch

from hfdae.data import load_images
from hfdae.processing import center_crop, to_tensor

HELD_OUT_DATA = "../shared/data/train/CBSD432"  # its `validation` hash split: never trained on
HELD_OUT_SPLIT = "validation"


def short_name(label: str) -> str:
    """``runs/repro-skip-adam/final`` -> ``skip-adam``; other labels unchanged."""
    parts = label.split("/")
    if len(parts) == 3 and parts[0] == "runs" and parts[1].startswith("repro-"):
        return parts[1].removeprefix("repro-")
    return label


def held_out_crops(data: str = HELD_OUT_DATA, split: str | None = HELD_OUT_SPLIT,
                   crop: int = 256) -> list[tuple[str, torch.Tensor]]:
    """``(name, [1, 3, crop, crop] image)`` for every readable image of ``split`` of ``data``, centrally cropped."""
    loaded, _ = load_images(data, None, split=split or None)
    return [(name, center_crop(to_tensor(image, 3)[0], crop).unsqueeze(0)) for name, image in loaded]
