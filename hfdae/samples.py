"""Built-in sample images that need no download, for the demo, the tests and the ``tiny`` config.

They are natural photographs that scikit-image ships inside its wheel (``skimage.data``; public
domain or CC0, see scikit-image's ``skimage/data/README.txt``), read from disk, never fetched.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the names import without numpy and torch, for `hfdae demo --help`
    import numpy as np

__all__ = ["SAMPLE_NAMES", "DEMO_SAMPLES", "DEMO_CROP_SIZE", "sample_image", "sample_images", "write_sample_folder"]

# Names of skimage.data functions whose images are inside the scikit-image wheel.
SAMPLE_NAMES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera", "moon", "coins",
                "brick", "grass", "gravel", "page", "text")
DEMO_SAMPLES = ("astronaut", "coffee", "chelsea")
DEMO_CROP_SIZE = 256  # the demo restores a central crop of this side


def sample_image(name: str, channels: int = 3) -> np.ndarray:
    """One bundled sample as an H x W x ``channels`` uint8 array.

    Args:
        name: one of :data:`SAMPLE_NAMES`.
        channels: 3 (gray samples are repeated) or 1 (colour samples are converted to luma).
    """
    if name not in SAMPLE_NAMES:
        raise ValueError(f"unknown sample image {name!r}; choose one of {list(SAMPLE_NAMES)}")
    import numpy as np
    from skimage import data  # imported lazily: skimage's import is slow

    from .processing import convert_channels

    array = np.asarray(getattr(data, name)())
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return convert_channels(array.astype(np.uint8), channels)


def sample_images(names: tuple[str, ...] = DEMO_SAMPLES, channels: int = 3) -> dict[str, np.ndarray]:
    """Several bundled samples by name (see :func:`sample_image`)."""
    return {name: sample_image(name, channels) for name in names}


def write_sample_folder(folder: str | Path, names: tuple[str, ...] = SAMPLE_NAMES, channels: int = 3) -> list[Path]:
    """Write bundled samples as PNG files into ``folder`` (for example a tiny training set); returns the paths."""
    from .processing import array_to_tensor, save_image

    folder = Path(folder)
    return [
        save_image(array_to_tensor(sample_image(name, channels)), folder / f"{name}.png") for name in names
    ]
